"""What the ledger's journal costs one request, exactly: the meter's admit and finish alone.

``python -m bench.journal [--requests N] [--dir PATH]`` runs ``N`` admit + finish pairs of the
meter (``services/metering.py``; no limits, the ledger's queue a list) with the journal off
and on (``store/journal.py``, its files in ``PATH``, default a scratch directory under the
system's temporary directory; pass the data directory's filesystem to measure that one), and
prints per pair: the Python bytecodes executed (``sys.settrace`` opcode events, deterministic)
and the wall time (median of 5 rounds), whose difference is what the journal's two
``os.write`` calls, its JSON encoding and its bookkeeping hold the event loop for.

``python -m bench.bytecodes --journal`` measures the same through the whole app; its counts move
by about ±100 bytecodes a request between runs (the event loop's own Python work depends on
timing), more than the journal adds, hence this benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import cast

from bench.opcodes import opcodes
from modelyard.core.chat import Usage
from modelyard.services.chat import Served
from modelyard.services.gateway import Gateway
from modelyard.services.metering import Call, Meter
from modelyard.store.journal import open_journal
from modelyard.store.usage import LedgerRow
from modelyard.tenancy.keys import Principal

ROUNDS = 5


class _Free:
    def cost_of(self, provider: str, model: str, usage: Usage | None) -> int | None:
        return 0


def _estimate() -> Usage:
    return Usage(12, 512)


async def _pairs(meter: Meter, n: int, offset: int) -> None:
    principal = Principal("abcdefabcdef", project_id="team")
    served = Served("chat", "openai", "gpt-4o-mini", attempts=1)
    for i in range(n):
        call = Call(f"req_{offset + i:024d}", "/v1/chat/completions", "chat", _estimate)
        ticket = await meter.admit(principal, call)
        ticket.usage = Usage(12, 40)
        await meter.finish(ticket, served, 200)


def _meter(directory: Path | None) -> tuple[Meter, list[LedgerRow]]:
    queue: list[LedgerRow] = []

    def put(row: LedgerRow) -> bool:
        queue.append(row)
        return True

    gateway = cast(Gateway, _Free())
    journal = open_journal(directory, put)[0] if directory is not None else None
    return Meter(None, put, lambda: gateway, journal), queue


def _bytecodes(meter: Meter, n: int) -> float:
    async def run() -> int:
        with opcodes() as counts:
            await _pairs(meter, n, 10**9)
        return sum(counts.values())

    return asyncio.run(run()) / n


def _micros(meter: Meter, n: int) -> float:
    rounds = []
    for r in range(ROUNDS):
        began = time.perf_counter()
        asyncio.run(_pairs(meter, n, r * n))
        rounds.append((time.perf_counter() - began) / n * 1e6)
    return statistics.median(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--dir", type=Path, help="where the journal's files go")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="modelyard-journal-", dir=args.dir) as scratch:
        results = []
        for directory in (None, Path(scratch)):
            meter, queue = _meter(directory)
            codes = _bytecodes(meter, 200)
            micros = _micros(meter, args.requests)
            results.append((codes, micros))
            assert len(queue) == 200 + ROUNDS * args.requests
        (off_codes, off_us), (on_codes, on_us) = results
        print(f"admit+finish  off {off_codes:,.0f} bytecodes {off_us:.2f} µs  "
              f"journal {on_codes:,.0f} bytecodes {on_us:.2f} µs  "
              f"added {on_codes - off_codes:,.0f} bytecodes {on_us - off_us:.2f} µs")  # fmt: skip


if __name__ == "__main__":
    main()
