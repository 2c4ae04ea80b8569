"""Deterministic sample values for a JSON Schema, used for tool arguments and structured output.

The fake has no model, so it "answers" a schema with the simplest value of each declared type:
strings are ``"x"`` (``"Paris"`` for a property named ``city``), numbers ``1``, booleans
``true``, arrays one sample item, objects every declared property. Enums and consts win over the
type, and ``$ref`` pointers into the same document are followed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Names whose sample makes a test read naturally ("weather in Paris"); everything else is "x".
_NAMED_STRINGS = {"city": "Paris"}
_STRING_FORMATS = {"date": "2024-01-01", "date-time": "2024-01-01T00:00:00Z", "email": "x@x.io"}
# Recursive schemas (a tree node containing nodes) must still produce a finite value.
_MAX_DEPTH = 8


def sample_for_schema(schema: object, *, root: object = None, name: str | None = None) -> Any:
    """Return a value that satisfies ``schema``'s types, enums and required properties."""
    return _sample(schema, root if root is not None else schema, name, 0)


def _sample(schema: object, root: object, name: str | None, depth: int) -> Any:
    if not isinstance(schema, Mapping) or depth > _MAX_DEPTH:
        return "x"
    if "$ref" in schema:
        return _sample(_resolve(schema["$ref"], root), root, name, depth + 1)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = schema.get(combinator)
        if isinstance(options, list) and options:
            return _sample(_first_non_null(options), root, name, depth + 1)
    return _sample_typed(schema, _schema_type(schema), root, name, depth)


def _sample_typed(
    schema: Mapping[str, Any], kind: str | None, root: object, name: str | None, depth: int
) -> Any:
    if kind == "object":
        properties = schema.get("properties")
        if not isinstance(properties, Mapping):
            return {}
        return {key: _sample(sub, root, key, depth + 1) for key, sub in properties.items()}
    if kind == "array":
        items = schema.get("items")
        return [_sample(items, root, name, depth + 1)] if isinstance(items, Mapping) else []
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt in _STRING_FORMATS:
        return _STRING_FORMATS[fmt]
    return _NAMED_STRINGS.get(name or "", "x")


def _schema_type(schema: Mapping[str, Any]) -> str | None:
    declared = schema.get("type")
    if isinstance(declared, list):
        declared = next((kind for kind in declared if kind != "null"), "null")
    if isinstance(declared, str):
        return declared
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return None


def _first_non_null(options: list[Any]) -> Any:
    for option in options:
        if not (isinstance(option, Mapping) and option.get("type") == "null"):
            return option
    return options[0]


def _resolve(pointer: object, root: object) -> object:
    """Follow a local JSON pointer such as ``#/$defs/Address``; foreign refs resolve to nothing."""
    if not isinstance(pointer, str) or not pointer.startswith("#"):
        return None
    node: object = root
    for raw in pointer.lstrip("#").strip("/").split("/"):
        if not raw:
            continue
        part = raw.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node
