"""Server CPU time per request: the foundation configuration against the metered one.

``python -m bench.cpu_per_request`` starts the nginx fake upstream, then each gateway in turn,
warms it up, runs ``wrk`` at 32 connections and reads the server's CPU time (every thread, from
``/proc``) before and after. Unlike requests/s, the figure does not depend on how the load
generator and the upstream share the machine's cores. ``BENCH_NO_LEDGER=1`` and
``BENCH_NO_LIMITS=1`` split the metered cost as they do for ``bench.run``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from bench.gateways import MODEL, modelyard_metered_spec, modelyard_spec, run_gateway
from bench.load import BENCH_KEY, write_script
from bench.tools import ensure_tools
from bench.upstream import run_upstream

SECONDS = 8


def cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of every thread of ``pid``, by thread id and name."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as stat:
            text = stat.read()
        name = text.split("(", 1)[1].rsplit(")", 1)[0]
        fields = text.rsplit(")", 1)[1].split()
        out[f"{tid} {name}"] = (int(fields[11]) + int(fields[12])) / tick
    return out


def _wrk(wrk: str, script: str, url: str, seconds: int) -> int:
    args = [wrk, "-t2", "-c32", f"-d{seconds}s", "-s", script, url]
    out = subprocess.run(args, capture_output=True, text=True, check=False).stdout
    found = re.search(r'"requests":(\d+)', out)
    return int(found.group(1)) if found else 0


def main() -> int:
    tools = ensure_tools()
    with run_upstream(tools["nginx"]) as upstream:
        for name in ("foundation", "metered"):
            if name == "foundation":
                spec, key = modelyard_spec(upstream), BENCH_KEY
            else:
                spec, key = modelyard_metered_spec(upstream)
            with run_gateway(spec) as gateway:
                script = str(write_script(MODEL, False, key))
                _wrk(tools["wrk"], script, gateway.chat_url, 3)
                before = cpu_seconds(gateway.pid)
                requests = _wrk(tools["wrk"], script, gateway.chat_url, SECONDS)
                after = cpu_seconds(gateway.pid)
            used = {t: after[t] - before.get(t, 0.0) for t in after}
            total = sum(used.values())
            busiest = max(used.items(), key=lambda item: item[1])
            print(
                f"{name:<10} {requests / SECONDS:>7,.0f} req/s   server CPU "
                f"{total / max(requests, 1) * 1e6:,.0f} µs/request   "
                f"(busiest thread {busiest[0]}: {busiest[1] / SECONDS:.0%})",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
