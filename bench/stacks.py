"""The server and HTTP client stack, chosen by measurement (issue 25, point 2).

``python -m bench.stacks [--rounds N] [--seconds S] [--connections C] [--only MODE]
[--stacks NAME ...] [--cpu N]`` starts the nginx fake upstream and, at once, one worker each of:

- the parsing proxy of ``bench/proxies.py`` on each server (uvicorn with uvloop and httptools,
  granian's ASGI interface, hypercorn; ``bench/servers.py``), calling its upstream with
  aiohttp, and on uvicorn with each other client (httpx, httpx2, pyreqwest;
  ``bench/clients.py``);
- Modelyard's default configuration (usage ledger and access log on, no keys: the
  ``default`` target of ``bench.ceilings``) served by ``modelyard serve`` (uvicorn) and, with
  the environment ``serve`` gives its workers, by granian and hypercorn.

They are probed, warmed up and loaded with ``wrk`` in interleaved rounds, non-streaming and
streaming, as ``bench.ceilings`` does. Each stack is printed as the median over rounds of its
req/s ÷ today's stack for the same app (uvicorn + aiohttp) in the same round, with a 95 %
interval, and of its worker's CPU time per request ÷ today's (every thread of the process
and its children). The JSON goes to ``bench/.work/stacks-<timestamp>.json``.

A server that keeps more threads busy (granian's HTTP layer runs on a Rust thread beside the
Python one) gets more of a shared machine than a one-thread server, and serves more requests/s
for the same CPU per request. ``--cpu N`` holds every server to CPU ``N``: each has that one
core in its turn, so req/s then compares what one core serves.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from bench.ceilings import (
    DEFAULT_CONFIG,
    MODES,
    PARSING,
    Ceilings,
    Running,
    add_load_arguments,
    load_in_turns,
    print_report,
    proxy_spec,
)
from bench.clients import AIOHTTP, HTTPX, HTTPX2, PYREQWEST
from bench.gateways import GatewaySpec, modelyard_spec, run_gateway
from bench.load import BENCH_KEY
from bench.procs import REPO_DIR, BenchError, stop_on_sigterm
from bench.servers import GRANIAN, HYPERCORN, UVICORN, UVICORN_STOCK
from bench.tools import ensure_tools
from bench.upstream import Upstream, run_upstream
from modelyard.observability.metrics import MULTIPROC_ENV
from modelyard.server.app import LOCAL_URL_ENV
from modelyard.services.observing import LOG_FORMAT_ENV, LOG_LEVEL_ENV

PROXY, MODELYARD = "proxy", "modelyard"  # the parsing proxy; Modelyard's default configuration
APP_FACTORY = "modelyard.server.app:app_from_env"  # what ``modelyard serve``'s workers build


@dataclass(frozen=True)
class Stack:
    """An app on a server, calling its upstream with a client (Modelyard's is aiohttp)."""

    app: str
    server: str
    client: str = AIOHTTP

    @property
    def name(self) -> str:
        return f"{self.app}/{self.server}+{self.client}"

    @property
    def today(self) -> Stack:
        """The same app on the stack Modelyard ships: uvicorn and aiohttp."""
        return Stack(self.app, UVICORN)


STACKS = (
    Stack(PROXY, UVICORN),
    Stack(PROXY, UVICORN_STOCK),
    Stack(PROXY, GRANIAN),
    Stack(PROXY, HYPERCORN),
    Stack(PROXY, UVICORN, HTTPX),
    Stack(PROXY, UVICORN, HTTPX2),
    Stack(PROXY, UVICORN, PYREQWEST),
    Stack(MODELYARD, UVICORN),
    Stack(MODELYARD, UVICORN_STOCK),
    Stack(MODELYARD, GRANIAN),
    Stack(MODELYARD, HYPERCORN),
)
BY_NAME = {stack.name: stack for stack in STACKS}


def chosen(names: Sequence[str]) -> list[Stack]:
    """The stacks of ``names`` in table order, with today's stack of each app among them
    (every ratio is taken against it)."""
    unknown = [name for name in names if name not in BY_NAME]
    if unknown:
        raise BenchError(f"unknown stack {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    picked = {BY_NAME[name] for name in names}
    picked |= {stack.today for stack in picked}
    return [stack for stack in STACKS if stack in picked]


def stack_spec(stack: Stack, upstream: Upstream, cpu: int | None = None) -> GatewaySpec:
    """How to start ``stack`` (one worker) in front of the fake upstream; with ``cpu``, its
    processes and threads are held to that CPU (``taskset``)."""
    if stack.app == PROXY:
        spec = proxy_spec(PARSING, upstream, stack=(stack.server, stack.client))
    elif stack.client != AIOHTTP:
        raise BenchError(f"{stack.name}: Modelyard calls its upstreams with aiohttp only")
    else:
        spec = modelyard_spec(upstream, True, DEFAULT_CONFIG, f"modelyard-{stack.server}")
        spec = spec if stack.server == UVICORN else as_serve_would(spec, stack.server)
    return spec if cpu is None else replace(spec, argv=["taskset", "-c", str(cpu), *spec.argv])


def as_serve_would(spec: GatewaySpec, server: str) -> GatewaySpec:
    """``spec`` (a ``modelyard serve`` command) served by ``server`` instead: the app its
    workers build, in the environment it gives them (config path, log level and format, a
    fresh directory for the metrics of the worker processes, no embedded model)."""
    config = spec.argv[spec.argv.index("--config") + 1]
    metrics = Path(spec.env["MODELYARD_DATA_DIR"]) / "prometheus"
    shutil.rmtree(metrics, ignore_errors=True)
    metrics.mkdir(parents=True)
    env = {
        **spec.env,
        "PYTHONPATH": str(REPO_DIR),
        "MODELYARD_CONFIG": config,
        LOG_LEVEL_ENV: "info",  # serve's default --log-level
        LOG_FORMAT_ENV: "text",  # the config's default
        MULTIPROC_ENV: str(metrics),
        LOCAL_URL_ENV: "",
    }
    argv = [sys.executable, "-m", "bench.servers", "--server", server]
    argv += ["--factory", APP_FACTORY, "--port", str(spec.port)]
    return replace(spec, argv=argv, env=env)


class Stacks(Ceilings):
    """Every round's samples, each stack a ratio of today's stack for its app."""

    label = "÷ today"

    def base_of(self, name: str) -> str:
        return BY_NAME[name].today.name

    def across_apps(self, mode: str) -> list[str]:
        """Modelyard ÷ the parsing proxy on the same server, where both ran: does a
        server's gain for the bare proxy carry over to the gateway?"""
        lines = []
        for name in self.samples[mode]:
            stack = BY_NAME[name]
            proxy = Stack(PROXY, stack.server).name
            if stack.app == MODELYARD and proxy in self.samples[mode]:
                lines.append(
                    f"  {mode}: Modelyard ÷ parsing proxy on {stack.server}: "
                    f"{self.ratio(mode, name, proxy):.3f}"
                )
        return lines


@contextlib.contextmanager
def started(
    upstream: Upstream, stacks: Sequence[Stack], cpu: int | None = None
) -> Iterator[dict[str, Running]]:
    """Every stack of ``stacks`` running at once (on ``cpu`` if given), until the block ends."""
    with contextlib.ExitStack() as exits:
        gateways = {s.name: run_gateway(stack_spec(s, upstream, cpu)) for s in stacks}
        yield {name: Running(exits.enter_context(gw), BENCH_KEY) for name, gw in gateways.items()}


def measure(
    wrk: str,
    upstream: Upstream,
    stacks: Sequence[Stack],
    modes: Sequence[str],
    settings: tuple[int, float, int, float],
    cpu: int | None = None,
) -> Stacks:
    """Start ``stacks`` at once and load them in turns, mode by mode. ``settings``: rounds,
    seconds per round, connections, warm-up seconds per stack and mode."""
    result = Stacks(*settings[:3])
    with started(upstream, stacks, cpu) as running:
        load_in_turns(wrk, running, modes, settings[3], result)
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.stacks", description=__doc__)
    add_load_arguments(parser, rounds=5)
    parser.add_argument(
        "--stacks",
        nargs="+",
        choices=list(BY_NAME),
        default=list(BY_NAME),
        metavar="STACK",
        help=f"app/server+client, of: {', '.join(BY_NAME)} (today's stack of each app is "
        "added: it is what the others are divided by)",
    )
    parser.add_argument(
        "--cpu",
        type=int,
        help="hold every server (its processes and threads) to this CPU: each then has one "
        "core in its turn, so req/s compares what a core serves, not how many threads a server "
        "keeps busy",
    )
    args = parser.parse_args(argv)
    if args.cpu is not None and args.cpu not in os.sched_getaffinity(0):
        parser.error(f"--cpu {args.cpu}: not a CPU this process may use")
    if args.rounds < 1 or args.seconds <= 0 or args.connections < 1:
        parser.error("--rounds and --connections must be at least 1, --seconds above 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    tools = ensure_tools()
    modes = (args.only,) if args.only else MODES
    stacks = chosen(args.stacks)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average before: {load} on {os.cpu_count()} cores", flush=True)
    settings = (args.rounds, args.seconds, args.connections, args.warmup)
    with run_upstream(tools["nginx"]) as upstream:
        result = measure(tools["wrk"], upstream, stacks, modes, settings, args.cpu)
    print_report("stacks", result, modes, [x for mode in modes for x in result.across_apps(mode)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
