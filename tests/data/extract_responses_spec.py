"""Regenerate ``responses_spec.json``: the component schemas the Responses tests validate
against, with every schema they reference, from ``openai/openai-openapi``'s ``openapi.json``.

Usage: ``python tests/data/extract_responses_spec.py PATH/TO/openapi.json COMMIT``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOTS = (
    "Response",
    "ResponseItemList",
    "ConversationResource",
    "ConversationItemList",
    "ConversationItem",
    "DeletedConversationResource",
    "TokenCountsResource",
    "ResponseStreamEvent",
)


def _refs(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            out.add(ref.rsplit("/", 1)[1])
        for value in node.values():
            _refs(value, out)
    elif isinstance(node, list):
        for value in node:
            _refs(value, out)


def extract(spec: dict[str, Any]) -> dict[str, Any]:
    schemas = spec["components"]["schemas"]
    wanted: set[str] = set()
    todo = [name for name in ROOTS if name in schemas]
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        wanted.add(name)
        found: set[str] = set()
        _refs(schemas[name], found)
        todo.extend(found - wanted)
    return {name: schemas[name] for name in sorted(wanted)}


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    out = {"commit": sys.argv[2], "components": {"schemas": extract(spec)}}
    target = Path(__file__).with_name("responses_spec.json")
    target.write_text(json.dumps(out, separators=(",", ":"), sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
