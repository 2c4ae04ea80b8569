"""Counting the Python bytecodes a piece of code executes: the in-process benchmarks' measure.

A count does not move with the machine's load (other processes, the CPU's frequency), so a
change to the request path shows in one short run. It does not see C code.
"""

from __future__ import annotations

import collections
import contextlib
import sys
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def opcodes() -> Iterator[collections.Counter[str]]:
    """The bytecodes executed while the block runs, by the file of their code
    (``sys.settrace`` opcode events). Frames already running when the block starts, the
    block's own among them, are not counted: what is measured must be called inside it."""
    counts: collections.Counter[str] = collections.Counter()

    def tracer(frame: Any, event: str, _arg: Any) -> Any:
        frame.f_trace_opcodes = True
        if event == "opcode":
            counts[frame.f_code.co_filename] += 1
        return tracer

    sys.settrace(tracer)
    try:
        yield counts
    finally:
        sys.settrace(None)
