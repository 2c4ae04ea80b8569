"""How many CPUs there are, and how many the embedded model's threads take by default.

Kept apart from the worker (which loads llama.cpp and numpy) so that ``modelyard serve`` can
size its gateway workers without importing either.
"""

from __future__ import annotations

import os


def cpu_count() -> int:
    """CPUs this process may run on (the affinity mask, where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def default_threads(cpus: int) -> int:
    """One CPU fewer than there are, at least one (``local.threads`` unset).

    llama.cpp's threads spin-wait for each other after every step, so a single other busy
    process on one of their cores stalls them all: measured on 2 cores (``bench.local_threads``,
    ``docs/local-model.md``), 2 threads fell from 106 to 14 tokens/s next to one busy loop while
    1 thread kept 49 (77 when quiet). The core left free also runs the gateway that relays the
    tokens. A dedicated machine can set ``local.threads`` to every CPU.
    """
    return max(1, cpus - 1)
