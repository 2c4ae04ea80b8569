"""The project's structural rules, checked on every run."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "modelyard"
MAX_MODULE_LINES = 800
MAX_FUNCTION_LINES = 60
VENDORS = ("anthropic", "gemini", "bedrock", "deepseek", "mistral", "xai", "grok", "openrouter")
# Layers that may mention vendors by name (adapters, catalog) or that hold examples.
VENDOR_OK = ("providers", "catalog", "cli")
DIALECTS = ("anthropic",)
# A served dialect is named after the API it speaks; only its own modules may say that name.
DIALECT_OK = {"anthropic": ("protocols/anthropic/", "server/anthropic_routes.py")}


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_modules_are_small():
    too_big = [
        f"{p.relative_to(SRC)}: {n}"
        for p in _modules()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    ]
    assert not too_big


def test_functions_are_short():
    long_ones = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_ones.append(
                        f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({length})"
                    )
    assert not long_ones


def test_signatures_are_narrow():
    wide = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                args = node.args
                count = len(args.args) + len(args.kwonlyargs) + len(args.posonlyargs)
                if args.args and args.args[0].arg in ("self", "cls"):
                    count -= 1
                if count >= 8:
                    wide.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({count})")
    assert not wide


def test_core_imports_nothing_from_the_package():
    for path in (SRC / "core").rglob("*.py"):
        bad = {
            m
            for m in _imports(path)
            if m.startswith("modelyard.") and not m.startswith("modelyard.core")
        }
        assert not bad, f"{path.relative_to(SRC)} imports {bad}"


def test_nothing_imports_server():
    for path in _modules():
        rel = path.relative_to(SRC)
        if rel.parts[0] in ("server", "cli"):
            continue
        assert not {m for m in _imports(path) if m.startswith("modelyard.server")}, rel


def test_protocols_and_providers_do_not_reach_upward():
    upward = ("modelyard.services", "modelyard.server", "modelyard.routing", "modelyard.tenancy")
    for layer in ("protocols", "providers", "core", "catalog"):
        for path in (SRC / layer).rglob("*.py"):
            bad = {m for m in _imports(path) if m.startswith(upward)}
            assert not bad, f"{path.relative_to(SRC)} imports {bad}"


def test_vendor_names_stay_in_adapters_and_catalog():
    offenders = []
    for path in _modules():
        rel = path.relative_to(SRC)
        if rel.parts[0] in VENDOR_OK:
            continue
        text = path.read_text().lower()
        # Served dialects are named after the API they speak: their own modules and the
        # server that mounts them may say that name; nothing else may.
        offenders += [
            f"{rel}: {v}"
            for v in VENDORS
            if v in text and v not in str(rel) and not (v in DIALECTS and rel.parts[0] == "server")
        ]
    assert not offenders
