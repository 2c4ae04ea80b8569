"""Server CPU time per request and requests/s: the foundation configuration against the
metered one, loaded in alternating rounds (see ``bench.interleaved``).

``python -m bench.cpu_per_request [--rounds N] [--seconds S]`` starts the nginx fake upstream
and both gateways, then prints each round and the medians. Unlike requests/s alone, CPU per
request does not depend on how the load generator and the upstream share the cores.
``BENCH_NO_LEDGER=1`` and ``BENCH_NO_LIMITS=1`` split the metered cost as for ``bench.run``.
"""

from __future__ import annotations

import argparse
import sys

from bench.interleaved import measure_interleaved
from bench.tools import ensure_tools
from bench.upstream import run_upstream


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu_per_request", description=__doc__)
    parser.add_argument("--rounds", type=int, default=12, help="rounds per configuration")
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds per round")
    args = parser.parse_args(argv)
    tools = ensure_tools()
    with run_upstream(tools["nginx"]) as upstream:
        result = measure_interleaved(tools["wrk"], upstream, args.rounds, args.seconds)
    for line in result.lines():
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
