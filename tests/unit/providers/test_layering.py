"""The wire we call must not depend on the wire we serve: providers never import protocols."""

from __future__ import annotations

import ast
from pathlib import Path

import modelyard

PROVIDERS = Path(modelyard.__file__).parent / "providers"


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_providers_do_not_import_protocols() -> None:
    offenders = {
        f"{path.relative_to(PROVIDERS)}: {module}"
        for path in PROVIDERS.rglob("*.py")
        for module in _imports(path)
        if module.startswith("modelyard.protocols")
    }
    assert not offenders
