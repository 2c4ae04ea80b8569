"""A small JSON Schema validator: the subset datasets use to check structured answers.

Supported: ``type`` (one or a list; ``integer`` accepts 3.0 as JSON does, never booleans),
``enum``, ``const``, ``properties``, ``required``, ``additionalProperties`` (boolean or schema),
``patternProperties``, ``items`` (one schema), ``prefixItems``, ``minItems``/``maxItems``,
``uniqueItems``, ``minLength``/``maxLength``, ``pattern``, ``minimum``/``maximum``,
``exclusiveMinimum``/``exclusiveMaximum`` (numbers), ``multipleOf``, ``allOf``/``anyOf``/``oneOf``
/``not``, and local ``$ref`` (``#/$defs/...``, ``#/definitions/...``, ``#``). Annotations such as
``format``, ``title`` and ``description`` are ignored, as validators do by default.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Schema = Mapping[str, Any] | bool


def validate(instance: Any, schema: Schema) -> list[str]:
    """Every violation as ``path: message``; an empty list means the instance is valid."""
    errors: list[str] = []
    _Validator(schema if isinstance(schema, Mapping) else {}, errors).check(instance, schema, "$")
    return errors


def _type_ok(value: Any, name: str) -> bool:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    checks: dict[str, Callable[[], bool]] = {
        "object": lambda: isinstance(value, dict),
        "array": lambda: isinstance(value, list),
        "string": lambda: isinstance(value, str),
        "boolean": lambda: isinstance(value, bool),
        "null": lambda: value is None,
        "number": lambda: is_number,
        "integer": lambda: is_number and float(value).is_integer(),
    }
    check = checks.get(name)
    return check() if check else True


def _same(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but True is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


class _Validator:
    def __init__(self, root: Mapping[str, Any], errors: list[str]) -> None:
        self.root = root
        self.errors = errors

    def check(self, value: Any, schema: Schema, path: str) -> None:
        if schema is True:
            return
        if schema is False:
            self.errors.append(f"{path}: no value is allowed here")
            return
        assert isinstance(schema, Mapping)
        if "$ref" in schema:
            self.check(value, self._resolve(str(schema["$ref"]), path), path)
        self._generic(value, schema, path)
        self._combinators(value, schema, path)
        if isinstance(value, dict):
            self._object(value, schema, path)
        elif isinstance(value, list):
            self._array(value, schema, path)
        elif isinstance(value, str):
            self._string(value, schema, path)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            self._number(value, schema, path)

    def _resolve(self, ref: str, path: str) -> Schema:
        if ref == "#":
            return self.root
        if not ref.startswith("#/"):
            self.errors.append(f"{path}: $ref {ref!r} is not supported (only local references)")
            return True
        node: Any = self.root
        for raw in ref[2:].split("/"):
            part = raw.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, Mapping) or part not in node:
                self.errors.append(f"{path}: $ref {ref!r} does not resolve")
                return True
            node = node[part]
        return node if isinstance(node, Mapping | bool) else True

    def _generic(self, value: Any, schema: Mapping[str, Any], path: str) -> None:
        expected = schema.get("type")
        if expected is not None:
            names = expected if isinstance(expected, list) else [expected]
            if not any(_type_ok(value, str(n)) for n in names):
                self.errors.append(f"{path}: expected {' or '.join(map(str, names))}")
        if "enum" in schema and not any(_same(value, e) for e in schema["enum"]):
            self.errors.append(f"{path}: must be one of {list(schema['enum'])!r}")
        if "const" in schema and not _same(value, schema["const"]):
            self.errors.append(f"{path}: must be {schema['const']!r}")

    def _combinators(self, value: Any, schema: Mapping[str, Any], path: str) -> None:
        for sub in schema.get("allOf", ()):
            self.check(value, sub, path)
        if "anyOf" in schema and not any(self._passes(value, s) for s in schema["anyOf"]):
            self.errors.append(f"{path}: matches none of anyOf")
        if "oneOf" in schema:
            matched = sum(self._passes(value, s) for s in schema["oneOf"])
            if matched != 1:
                self.errors.append(f"{path}: must match exactly one of oneOf (matched {matched})")
        if "not" in schema and self._passes(value, schema["not"]):
            self.errors.append(f"{path}: must not match the 'not' schema")

    def _passes(self, value: Any, schema: Schema) -> bool:
        probe = _Validator(self.root, [])
        probe.check(value, schema, "$")
        return not probe.errors

    def _object(self, value: dict[str, Any], schema: Mapping[str, Any], path: str) -> None:
        for name in schema.get("required", ()):
            if name not in value:
                self.errors.append(f"{path}: missing required property {name!r}")
        props: Mapping[str, Any] = schema.get("properties", {})
        patterns: Mapping[str, Any] = schema.get("patternProperties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            where = f"{path}.{key}"
            matched = key in props
            if matched:
                self.check(item, props[key], where)
            for pattern, sub in patterns.items():
                if re.search(pattern, key):
                    matched = True
                    self.check(item, sub, where)
            if not matched:
                if extra is False:
                    self.errors.append(f"{path}: unexpected property {key!r}")
                elif isinstance(extra, Mapping):
                    self.check(item, extra, where)

    def _array(self, value: list[Any], schema: Mapping[str, Any], path: str) -> None:
        prefix = schema.get("prefixItems", ())
        for i, sub in enumerate(prefix[: len(value)]):
            self.check(value[i], sub, f"{path}[{i}]")
        items = schema.get("items")
        if isinstance(items, Mapping | bool):
            for i in range(len(prefix), len(value)):
                self.check(value[i], items, f"{path}[{i}]")
        if "minItems" in schema and len(value) < schema["minItems"]:
            self.errors.append(f"{path}: needs at least {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            self.errors.append(f"{path}: allows at most {schema['maxItems']} items")
        if schema.get("uniqueItems"):
            for i, item in enumerate(value):
                if any(_same(item, other) for other in value[:i]):
                    self.errors.append(f"{path}[{i}]: duplicate item")
                    break

    def _string(self, value: str, schema: Mapping[str, Any], path: str) -> None:
        if "minLength" in schema and len(value) < schema["minLength"]:
            self.errors.append(f"{path}: shorter than {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            self.errors.append(f"{path}: longer than {schema['maxLength']} characters")
        if "pattern" in schema and not re.search(str(schema["pattern"]), value):
            self.errors.append(f"{path}: does not match pattern {schema['pattern']!r}")

    def _number(self, value: float, schema: Mapping[str, Any], path: str) -> None:
        bounds: list[tuple[str, Callable[[float, float], bool], str]] = [
            ("minimum", lambda v, b: v >= b, ">="),
            ("maximum", lambda v, b: v <= b, "<="),
            ("exclusiveMinimum", lambda v, b: v > b, ">"),
            ("exclusiveMaximum", lambda v, b: v < b, "<"),
        ]
        for key, ok, sign in bounds:
            bound = schema.get(key)
            if (
                isinstance(bound, int | float)
                and not isinstance(bound, bool)
                and not ok(value, bound)
            ):
                self.errors.append(f"{path}: must be {sign} {bound}")
        step = schema.get("multipleOf")
        if isinstance(step, int | float) and step > 0:
            ratio = value / step
            if abs(ratio - round(ratio)) > 1e-9:
                self.errors.append(f"{path}: must be a multiple of {step}")
