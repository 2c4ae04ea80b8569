"""Field names as Google's API reads them: lowerCamelCase or the proto's snake_case.

Google's endpoints parse request JSON as proto3 JSON, which accepts both spellings of every
field (``mimeType`` and ``mime_type``), and the google-genai SDK relies on it: it sends nested
objects in snake_case (``parameters_json_schema``, ``thinking_budget``, ``inline_data``'s
``mime_type``). Each object of the API's own structure is read through ``fields``, which gives
its keys in camelCase; what clients own (function ``args``, a ``response``, JSON Schemas and
their property names) is never renamed.
"""

from __future__ import annotations

from typing import Any

from modelyard.protocols.validate import require_dict


def camel(key: str) -> str:
    if "_" not in key:
        return key
    head, *rest = key.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def fields(value: Any, param: str) -> dict[str, Any]:
    """``value`` as an object of the API, its keys in camelCase; a 400 naming ``param`` if it
    is not an object."""
    obj = require_dict(value, param)
    # Asked of every content and part: a plain loop, no generator per call.
    for key in obj:
        if "_" in key:
            return {camel(key): item for key, item in obj.items()}
    return obj
