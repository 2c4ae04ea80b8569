"""Gemini's ``Schema`` (an OpenAPI 3.0 subset: ``"type": "OBJECT"``, ``nullable``) as JSON Schema.

``responseSchema`` and a declaration's ``parameters`` use it; the core carries JSON Schema. Type
names are lower-cased, ``nullable: true`` becomes a ``[type, "null"]`` type, ``propertyOrdering``
and ``example`` (hints to Gemini's decoder, not constraints) are left out, and every other
keyword of the subset keeps its name, which JSON Schema shares. A keyword outside the subset is
a 400 naming it, as Gemini would answer.
"""

from __future__ import annotations

from typing import Any

from modelyard.protocols.gemini.fields import fields
from modelyard.protocols.validate import bad, require_dict

_SAME = frozenset(
    {
        "format", "title", "description", "enum", "required", "minItems", "maxItems",
        "minimum", "maximum", "minLength", "maxLength", "pattern", "minProperties",
        "maxProperties", "default",
    }
)  # fmt: skip
_HINTS = frozenset({"propertyOrdering", "example"})


def openapi_to_json_schema(raw: Any, param: str) -> dict[str, Any]:
    schema = fields(raw, param)
    out: dict[str, Any] = {}
    for key, value in schema.items():
        p = f"{param}.{key}"
        if key == "type":
            if not isinstance(value, str):
                raise bad(p, "must be a string such as OBJECT or STRING")
            out["type"] = value.lower()
        elif key == "properties":
            props = require_dict(value, p)  # property names, not fields: kept
            out[key] = {
                name: openapi_to_json_schema(sub, f"{p}.{name}") for name, sub in props.items()
            }
        elif key == "items":
            out[key] = openapi_to_json_schema(value, p)
        elif key == "anyOf":
            if not isinstance(value, list):
                raise bad(p, "must be an array of schemas")
            out[key] = [openapi_to_json_schema(sub, f"{p}[{i}]") for i, sub in enumerate(value)]
        elif key in _SAME:
            out[key] = value
        elif key not in _HINTS and key != "nullable":
            raise bad(p, "is not a keyword of Gemini's Schema")
    if schema.get("nullable") is True:
        kind = out.get("type")
        out["type"] = [kind, "null"] if isinstance(kind, str) else "null"
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out
