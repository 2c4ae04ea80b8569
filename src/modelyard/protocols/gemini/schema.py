"""Gemini's ``Schema`` (an OpenAPI 3.0 subset: ``"type": "OBJECT"``, ``nullable``) as JSON Schema.

``responseSchema`` and a declaration's ``parameters`` use it; the core carries JSON Schema. Type
names are lower-cased, ``nullable: true`` becomes a ``[type, "null"]`` type, ``propertyOrdering``
and ``example`` (hints to Gemini's decoder, not constraints) are left out, and every other
keyword of the subset keeps its name, which JSON Schema shares. A keyword outside the subset is
a 400 naming it, as Gemini would answer.
"""

from __future__ import annotations

from typing import Any

from modelyard.core.errors import InvalidRequest
from modelyard.protocols.gemini.fields import fields
from modelyard.protocols.validate import bad, nested, require_dict

_SAME = frozenset(
    {
        "format", "title", "description", "enum", "required", "minItems", "maxItems",
        "minimum", "maximum", "minLength", "maxLength", "pattern", "minProperties",
        "maxProperties", "default",
    }
)  # fmt: skip
_HINTS = frozenset({"propertyOrdering", "example"})


def openapi_to_json_schema(raw: Any, param: str) -> dict[str, Any]:
    """``raw``, a schema at ``param``, as JSON Schema; a 400 names the keyword under ``param``
    (``parameters.properties.city.type``)."""
    try:
        return _schema(raw)
    except InvalidRequest as exc:  # a keyword's path, relative to the schema: made whole now
        raise nested(param, exc) from None


def _schema(raw: Any) -> dict[str, Any]:
    """One schema, its errors naming keywords relative to it."""
    schema = fields(raw, "")
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type":
            if not isinstance(value, str):
                raise bad(key, "must be a string such as OBJECT or STRING")
            out["type"] = value.lower()
        elif key == "properties":
            props = require_dict(value, key)  # property names, not fields: kept
            out[key] = {name: _sub(sub, key, name) for name, sub in props.items()}
        elif key == "items":
            out[key] = _sub(value, key)
        elif key == "anyOf":
            if not isinstance(value, list):
                raise bad(key, "must be an array of schemas")
            out[key] = [_sub(sub, key, i) for i, sub in enumerate(value)]
        elif key in _SAME:
            out[key] = value
        elif key not in _HINTS and key != "nullable":
            raise bad(key, "is not a keyword of Gemini's Schema")
    if "enum" in out and not isinstance(out["enum"], list):
        raise bad("enum", "must be an array of values")
    if schema.get("nullable") is True:
        kind = out.get("type")
        out["type"] = [kind, "null"] if isinstance(kind, str) else "null"
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def _sub(raw: Any, key: str, name: str | int | None = None) -> dict[str, Any]:
    """The schema under ``key`` (``items``), or its property or element ``name``."""
    try:
        return _schema(raw)
    except InvalidRequest as exc:
        if name is None:
            raise nested(key, exc) from None
        raise nested(f"{key}[{name}]" if isinstance(name, int) else f"{key}.{name}", exc) from None
