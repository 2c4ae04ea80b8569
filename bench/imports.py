"""What a served gateway imports, and what each top-level package costs in resident memory.

``python -m bench.imports [--top N] [--json PATH]``, with ``MODELYARD_CONFIG`` and
``MODELYARD_DATA_DIR`` set as ``modelyard serve`` sets them for its worker: in this fresh
process, import what ``modelyard serve`` imports (``modelyard.cli.serve``), build the app as a
worker does (``app_from_env``), open it through its lifespan and close it. Printed: the
resident memory (RSS) at each step, then the top-level packages by the RSS their own modules
added while loading (a module's cost excludes the modules it imported in turn, which count for
their own package), with the number of modules and who imported the package first.

An import hook (first on ``sys.meta_path``) wraps each module's loader and reads
``/proc/self/statm`` before and after ``create_module`` and ``exec_module``. Costs are in whole
pages and include what the interpreter's allocator reserves in arenas, so a single module's
figure is rough; a package's sum is what leaving it out would save, within about 0.5 MB.
Memory allocated later, when the app is built and opened (price data, engines), is counted in
the steps, not by package. ``bench.machine rss`` runs this beside the served gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.abc
import importlib.machinery
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

MB = 1024 * 1024
_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """This process's resident memory (``/proc/self/statm``, in pages)."""
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * _PAGE


def package_of(module: str) -> str:
    """The name a module's cost is booked under: its top-level package, except our own,
    which is split by subpackage (``modelyard.services``)."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "modelyard" else parts[0]


@dataclass
class Package:
    rss: int = 0
    modules: int = 0
    first_by: str = ""


@dataclass
class Ledger:
    """What each package cost, filled by ``_Measured`` loaders."""

    packages: dict[str, Package] = field(default_factory=dict)
    _nested: list[int] = field(default_factory=list)  # RSS taken by imports inside each
    _loading: list[str] = field(default_factory=list)  # the modules being executed

    def first_seen(self, name: str) -> None:
        entry = self.packages.setdefault(package_of(name), Package())
        if not entry.modules and not entry.first_by:
            importer = next(
                (m for m in reversed(self._loading) if package_of(m) != package_of(name)), ""
            )
            entry.first_by = importer or "(a function at run time, or bench.imports itself)"

    def measure(self, name: str, step: Callable[[], Any]) -> Any:
        self._nested.append(0)
        self._loading.append(name)
        before = rss_bytes()
        try:
            return step()
        finally:
            grown = rss_bytes() - before
            self._loading.pop()
            inner = self._nested.pop()
            self.packages.setdefault(package_of(name), Package()).rss += grown - inner
            if self._nested:
                self._nested[-1] += grown


class _Measured(importlib.abc.Loader):
    """A module's own loader, its two loading steps measured; every other attribute is the
    original loader's (resource readers, ``get_source``)."""

    def __init__(self, inner: importlib.abc.Loader, name: str, ledger: Ledger) -> None:
        self._inner, self._name, self._ledger = inner, name, ledger

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._inner, attribute)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._ledger.measure(self._name, lambda: self._inner.create_module(spec))  # type: ignore[no-any-return]

    def exec_module(self, module: ModuleType) -> None:
        self._ledger.measure(self._name, lambda: self._inner.exec_module(module))
        self._ledger.packages[package_of(self._name)].modules += 1


class _Hook(importlib.abc.MetaPathFinder):
    """Finds each module with the finders after it and wraps the loader it was given."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is None:
                continue
            if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                self._ledger.first_seen(fullname)
                spec.loader = _Measured(spec.loader, fullname, self._ledger)
            return spec
        return None


def _build_and_open() -> list[tuple[str, int]]:
    """The steps of a served worker's start, and the RSS after each."""
    steps = [("interpreter", rss_bytes())]
    import modelyard.cli.serve  # noqa: F401  # what `modelyard serve` imports before uvicorn
    from modelyard.server.app import app_from_env

    steps.append(("imported", rss_bytes()))
    app = app_from_env()
    steps.append(("app built", rss_bytes()))

    async def lifespan() -> None:
        async with app.router.lifespan_context(app):
            steps.append(("app opened", rss_bytes()))

    asyncio.run(lifespan())
    return steps


def report(top: int) -> dict[str, Any]:
    """Run the steps under the hook; the figures as a JSON-able dict."""
    ledger = Ledger()
    sys.meta_path.insert(0, _Hook(ledger))
    started = time.perf_counter()
    steps = _build_and_open()
    ranked = sorted(ledger.packages.items(), key=lambda item: -item[1].rss)
    return {
        "steps_mb": {name: rss / MB for name, rss in steps},
        "seconds": time.perf_counter() - started,
        "modules": len(sys.modules),
        "packages": [
            {"package": name, "mb": p.rss / MB, "modules": p.modules, "first_by": p.first_by}
            for name, p in ranked[:top]
        ],
        "imported": sorted({m.split(".")[0] for m in sys.modules}),
    }


def print_report(data: dict[str, Any]) -> None:
    steps = ", ".join(f"{name} {mb:.1f}" for name, mb in data["steps_mb"].items())
    print(f"RSS (MB) of a fresh worker-like process: {steps}; {data['modules']} modules")
    print(f"{'MB':>6} {'modules':>7}  package (imported first by)")
    for row in data["packages"]:
        print(f"{row['mb']:>6.1f} {row['modules']:>7}  {row['package']} ({row['first_by']})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.imports", description=__doc__)
    parser.add_argument("--top", type=int, default=25, help="packages to list")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    data = report(args.top)
    print_report(data)
    if args.json:
        args.json.write_text(json.dumps(data, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
