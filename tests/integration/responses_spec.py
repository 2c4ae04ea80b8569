"""Validation of response bodies against the pinned OpenAPI schemas (``tests/data``)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs

SPEC_PATH = Path(__file__).parents[1] / "data" / "responses_spec.json"


@cache
def _spec() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(SPEC_PATH.read_text())
    return spec


@cache
def _validator(name: str) -> jsonschema_rs.Draft202012Validator:
    schema = {"$ref": f"#/components/schemas/{name}", "components": _spec()["components"]}
    return jsonschema_rs.Draft202012Validator(schema)


def spec_errors(name: str, body: Any) -> list[str]:
    """What is wrong with ``body`` as the spec's ``name`` (empty: valid)."""
    return [f"{e.instance_path}: {e.message}"[:300] for e in _validator(name).iter_errors(body)]


def spec_commit() -> str:
    return str(_spec()["commit"])
