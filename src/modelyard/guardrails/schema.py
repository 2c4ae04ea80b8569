"""Structured output checked against a JSON schema: the guard's own ``schema``, else the one the
request asked for (``response_format`` ``json_schema``). Checked on whole answers, after the
other guards (``services/guards.py``), with ``retries`` more attempts (0 or 1, default 1): the
model is shown what was wrong and asked again. Streams are checked once, at their finish, before
the held-back end goes out, without a retry (most of the text has gone out; ``services/guards.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from modelyard.guardrails.model import Finding

MISMATCH: Final = "schema_mismatch"


@dataclass(frozen=True, slots=True)
class SchemaCheck:
    schema: Mapping[str, Any] | None
    retries: int

    def scan(self, text: str) -> list[Finding]:
        """Not a text scanner: whole answers are checked with ``problem``."""
        return []

    def problem(self, text: str, schema: Mapping[str, Any]) -> str | None:
        """What is wrong with ``text`` as an instance of ``schema`` (None: nothing)."""
        import jsonschema_rs  # loaded with the first check, not with the gateway

        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            return f"not JSON: {exc}"
        try:
            jsonschema_rs.validator_for(dict(schema)).validate(value)
        except jsonschema_rs.ValidationError as exc:
            where = "/".join(str(p) for p in exc.instance_path) or "(root)"
            return f"at {where}: {exc.message}"[:300]
        return None


def schema_guard(settings: Mapping[str, Any]) -> SchemaCheck:
    """Settings: ``schema`` (a JSON schema; default: the request's), ``retries`` (0 or 1)."""
    unknown = set(settings) - {"schema", "retries"}
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; accepted: retries, schema")
    import jsonschema_rs  # loaded when a policy has this guard

    schema = settings.get("schema")
    if schema is not None:
        if not isinstance(schema, dict):
            raise ValueError("schema: a JSON schema object")
        try:
            jsonschema_rs.validator_for(schema)
        except (jsonschema_rs.ValidationError, ValueError) as exc:
            raise ValueError(f"schema: not a valid JSON schema: {exc}") from exc
    retries = settings.get("retries", 1)
    if retries not in (0, 1) or isinstance(retries, bool):
        raise ValueError(f"retries: 0 or 1; got {retries!r}")
    return SchemaCheck(schema, int(retries))
