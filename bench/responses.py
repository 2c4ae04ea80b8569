"""The added cost of a Responses API call over a Chat Completions call, on one server and the
same fake upstream (nginx), loaded in interleaved rounds (``bench.interleaved.in_turns``).

``python -m bench.responses [--rounds N] [--seconds S]`` starts the nginx fake upstream and
``modelyard serve`` (the foundation configuration: no keys, no ledger), then posts in turns:

- ``chat``: ``POST /v1/chat/completions`` ``{"model", "messages": [user "Hello"]}``;
- ``responses``: ``POST /v1/responses`` ``{"model", "input": "Hello", "store": false}``: the
  wire layer's cost (decode items, encode the ``Response`` object);
- ``stored``: the same with ``store: true`` (the default): plus one row written per response.

It prints requests/s and server CPU per request per round, and the medians of responses ÷ chat
and stored ÷ chat. Goal: a Responses call within 15 % of a Chat Completions call (requests/s).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass, field

from bench.gateways import MODEL, modelyard_spec, run_gateway
from bench.interleaved import Turn, in_turns, median_interval
from bench.load import LoadSpec, request_body, run_wrk, write_body_script
from bench.probe import check_chat
from bench.procs import BenchError
from bench.tools import ensure_tools
from bench.upstream import run_upstream

GOAL = 0.85  # responses ÷ chat requests/s


@dataclass
class Rounds:
    rps: dict[str, list[float]] = field(default_factory=dict)
    cpu_us: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, rps: float, cpu_us: float) -> None:
        self.rps.setdefault(name, []).append(rps)
        self.cpu_us.setdefault(name, []).append(cpu_us)

    def ratios(self, name: str) -> list[float]:
        return [r / c for r, c in zip(self.rps[name], self.rps["chat"], strict=True) if c]


def _bodies() -> dict[str, tuple[str, str]]:
    """name → (path, body)."""
    responses = {"model": MODEL, "input": "Hello", "store": False}
    stored = {"model": MODEL, "input": "Hello"}
    return {
        "chat": ("/v1/chat/completions", request_body(MODEL, False)),
        "responses": ("/v1/responses", json.dumps(responses, separators=(",", ":"))),
        "stored": ("/v1/responses", json.dumps(stored, separators=(",", ":"))),
    }


def measure(rounds: int, seconds: float, connections: int) -> Rounds:
    tools = ensure_tools()
    result = Rounds()
    with run_upstream(tools["nginx"]) as upstream, run_gateway(modelyard_spec(upstream)) as gw:
        base = f"http://127.0.0.1:{gw.port}"
        check_chat(gw.chat_url, MODEL, False, "sk-bench")
        targets = {
            name: (base + path, write_body_script(f"bench-{name}", body))
            for name, (path, body) in _bodies().items()
        }
        for url, script in targets.values():  # warm-up, and a failing body fails here
            warm = run_wrk(tools["wrk"], LoadSpec(url, script, connections, 2, 2))
            if warm.failures or not warm.requests:
                raise BenchError(f"{url}: {warm.failures} failed requests while warming up")
        turns = {name: Turn(url, script, gw.pid) for name, (url, script) in targets.items()}
        samples = in_turns(tools["wrk"], turns, rounds, seconds, connections)
    for name, rows in samples.items():
        for sample in rows:
            result.add(name, sample.rps, sample.cpu_us)
    return result


def report(result: Rounds) -> list[str]:
    lines = []
    for name in result.rps:
        cells = " ".join(f"{r:,.0f}" for r in result.rps[name])
        cpu = statistics.median(result.cpu_us[name])
        lines.append(f"  {name:<9} req/s per round: {cells}; CPU/request median {cpu:,.0f} µs")
    for name in ("responses", "stored"):
        ratios = result.ratios(name)
        interval = median_interval(ratios)
        span = f" (95 % interval {interval[0]:.3f}–{interval[1]:.3f})" if interval else ""
        lines.append(f"  {name} ÷ chat req/s: median {statistics.median(ratios):.3f}{span}")
    verdict = statistics.median(result.ratios("responses")) >= GOAL
    lines.append(f"  goal responses ≥ {GOAL:.2f} × chat: {'PASS' if verdict else 'MISS'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.responses", description=__doc__)
    parser.add_argument("--rounds", type=int, default=8, help="rounds per kind of call")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per round")
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args(argv)
    for line in report(measure(args.rounds, args.seconds, args.connections)):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
