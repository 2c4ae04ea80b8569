"""Command-line clients from the npm registry (Codex, Claude Code, Gemini CLI) for the tests.

Each is installed once per machine into a cache directory (``MODELYARD_TEST_CACHE`` or
``~/.cache/modelyard-tests``), pinned to an exact version, and found there on later runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def _cache_root() -> Path:
    base = os.environ.get("MODELYARD_TEST_CACHE") or str(Path.home() / ".cache" / "modelyard-tests")
    return Path(base)


def npm_tool(package: str, version: str, binary: str) -> Path:
    """The path of ``binary`` from ``package@version``, installing it on first use."""
    prefix = _cache_root() / f"{package.replace('/', '+').lstrip('@')}-{version}"
    path = prefix / "node_modules" / ".bin" / binary
    if path.exists():
        return path
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail(f"npm is needed to install {package} for these tests")
    prefix.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            npm,
            "install",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(prefix),
            f"{package}@{version}",
        ],
        check=True,
        capture_output=True,
        timeout=900,
    )
    if not path.exists():
        pytest.fail(f"{package}@{version} installed no {binary!r} under {prefix}")
    return path
