"""JSON Schemas for Gemini's ``responseJsonSchema`` and ``parametersJsonSchema`` fields.

Both fields take standard JSON Schema, of which Gemini enforces a documented subset (``$id``,
``$defs``, ``$ref``, ``$anchor``, ``type``, ``format``, ``title``, ``description``, ``enum``,
``items``, ``prefixItems``, ``minItems``, ``maxItems``, ``minimum``, ``maximum``, ``anyOf``,
``oneOf``, ``properties``, ``additionalProperties``, ``required``, ``propertyOrdering``) and
silently ignores the rest. So a schema is sent as it is, except that:

* ``const`` becomes the equivalent one-value ``enum``;
* ``$schema`` and ``$comment`` (annotations Gemini does not list) are dropped;
* when the client asked for *strict* adherence, a validation keyword Gemini would ignore is an
  ``InvalidRequest`` naming it: a strict contract must not be weakened without a word.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelyard.core.errors import InvalidRequest

_DROPPED = frozenset({"$schema", "$comment"})
# Validation keywords outside Gemini's subset: honouring "strict" means refusing them.
_UNENFORCED = frozenset(
    {
        "allOf", "not", "if", "then", "else", "pattern", "patternProperties", "minLength",
        "maxLength", "multipleOf", "exclusiveMinimum", "exclusiveMaximum", "uniqueItems",
        "contains", "minContains", "maxContains", "minProperties", "maxProperties",
        "dependentRequired", "dependentSchemas", "propertyNames", "unevaluatedProperties",
        "unevaluatedItems",
    }
)  # fmt: skip
# Where sub-schemas live: a map of them, one of them, or a list of them.
_SCHEMA_MAPS = ("properties", "$defs", "definitions")
_SCHEMA_ONE = ("items", "additionalProperties")
_SCHEMA_LISTS = ("prefixItems", "anyOf", "oneOf")


def convert_schema(schema: Mapping[str, Any], *, strict: bool, param: str) -> dict[str, Any]:
    """``schema`` ready for Gemini; ``param`` names its place in the request for errors."""
    return _convert(schema, strict, param)


def _convert(schema: Mapping[str, Any], strict: bool, param: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DROPPED:
            continue
        if strict and key in _UNENFORCED:
            raise InvalidRequest(
                f"JSON Schema keyword {key!r} cannot be enforced by Gemini; remove it or do "
                "not ask for strict adherence",
                param=f"{param}.{key}",
                code="unsupported_schema_keyword",
            )
        if key == "const":
            out["enum"] = [value]
        elif key in _SCHEMA_MAPS and isinstance(value, Mapping):
            out[key] = {
                name: _sub(sub, strict, f"{param}.{key}.{name}") for name, sub in value.items()
            }
        elif key in _SCHEMA_ONE and isinstance(value, Mapping):
            out[key] = _convert(value, strict, f"{param}.{key}")
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [_sub(sub, strict, f"{param}.{key}[{i}]") for i, sub in enumerate(value)]
        else:
            out[key] = value
    return out


def _sub(schema: object, strict: bool, param: str) -> object:
    # Boolean schemas (``true``/``false``) are legal JSON Schema; leave them to the upstream.
    return _convert(schema, strict, param) if isinstance(schema, Mapping) else schema
