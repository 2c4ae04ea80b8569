"""The cost of observability: requests/s, p50 at one connection and server CPU per request with
metrics on (traces off) and with metrics and traces on, against observability off.

``python -m bench.observability [--rounds N] [--seconds S] [--connections C]``
``python -m bench.observability --instructions [--requests N] [--baseline PATH] [--no-traces]
[--rounds R]``

The three configurations of ``modelyard serve --workers 1`` (the foundation config: no keys,
no limits, no ledger; access log on as a user would run it) run at once, idle while another is
loaded, and are loaded in turns, the order rotating every round, so each round's three share the
machine's condition (see ``bench/interleaved.py`` for why). Traces go by OTLP/HTTP to a sink in
this process that answers every export with 200, so the figure includes building, batching and
sending every span. Printed: per round and as medians over rounds (with a 95 % interval), each
configuration ÷ off. With ``--instructions``: instructions per request through the app in
process under callgrind (``bench/inprocess.py``'s method, access log off), which repeat within
about a percent however busy the machine is (the once-a-second metrics flush is left out of
the count: it costs per second, not per request). Goal: metrics on at least 0.97 of off's
requests/s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from bench.gateways import MODEL, GatewaySpec, foundation_config, modelyard_bin, run_gateway
from bench.interleaved import cpu_seconds, median_interval
from bench.load import LoadSpec, run_wrk, write_script
from bench.probe import check_chat
from bench.procs import LOOPBACK, WORK_DIR, BenchError, free_port
from bench.tools import ensure_tools
from bench.upstream import Upstream, run_upstream

OFF, METRICS, TRACING = "off", "metrics", "metrics+traces"
ALL = (OFF, METRICS, TRACING)


def _observability(name: str, collector: str) -> dict[str, Any]:
    if name == OFF:
        return {}
    on: dict[str, Any] = {"metrics": {"enabled": True}}
    if name == TRACING:
        on["tracing"] = {"enabled": True, "exporter": "otlp_http", "endpoint": collector}
    return on


def _spec(upstream: Upstream, name: str, collector: str) -> GatewaySpec:
    config = foundation_config(upstream)
    config["observability"] = _observability(name, collector)
    slug = name.replace("+", "-")
    path = WORK_DIR / "configs" / f"observability-{slug}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    data = WORK_DIR / f"observability-{slug}-data"
    data.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [str(modelyard_bin()), "serve", "--host", LOOPBACK, "--port", str(port)]
    argv += ["--workers", "1", "--config", str(path)]
    return GatewaySpec(
        f"modelyard-{slug}", argv, "/readyz", port, {"MODELYARD_DATA_DIR": str(data)}
    )


class _Sink(BaseHTTPRequestHandler):
    """An OTLP/HTTP collector that accepts and drops everything."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def _collector() -> Iterator[str]:
    server = ThreadingHTTPServer((LOOPBACK, 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _summary(label: str, ratios: list[float]) -> str:
    interval = median_interval(ratios)
    span = f" (95 % interval {interval[0]:.3f}–{interval[1]:.3f})" if interval else ""
    return f"{label}: median {statistics.median(ratios):.3f}{span}"


def instructions(
    requests: int,
    warmup: int,
    baseline: Path | None = None,
    names: tuple[str, ...] = ALL,
    rounds: int = 1,
) -> None:
    """Instructions per request of each configuration (callgrind), and each ÷ off; with a
    ``baseline`` checkout, of that tree too, in the same run (before/after a change), the two
    trees alternating round by round (ABBA); medians over rounds."""
    import os

    from bench.inprocess import GAUGE_INTERVAL_ENV, TREE

    # The metrics' flush (and gauge refresh) runs once a wall-clock second: a cost per second,
    # not per request. Under callgrind a request takes ~50 times longer and its duration
    # follows the machine's load, so the flushes would add a load-dependent share to the
    # count; one flush at start-up, then none, keeps the count the request path's own.
    os.environ[GAUGE_INTERVAL_ENV] = "3600"
    tools = ensure_tools("valgrind")
    trees = {"this": TREE} if baseline is None else {"baseline": baseline.resolve(), "this": TREE}
    per: dict[tuple[str, str], list[float]] = {}
    with run_upstream(tools["nginx"]) as upstream, _collector() as collector:
        for round_ in range(rounds):
            for name in names:
                labels = list(trees) if round_ % 2 == 0 else list(reversed(trees))
                for label in labels:
                    count = _per_request(
                        tools, trees[label], upstream, collector, name, requests, warmup
                    )
                    per.setdefault((label, name), []).append(count)
                    print(
                        f"round {round_ + 1} {label:<8} {name:<15} "
                        f"{count / 1000:9.1f} k instructions/request",
                        flush=True,
                    )
    median = {key: statistics.median(counts) for key, counts in per.items()}
    for (label, name), count in median.items():
        print(f"{label:<8} {name:<15} {count / 1000:9.1f} k (median of {rounds})")
    for label in trees:
        for name in names:
            if name != OFF:
                print(f"{label}: {name} ÷ off = {median[label, name] / median[label, OFF]:.3f}")


def _per_request(
    tools: dict[str, str],
    tree: Path,
    upstream: Upstream,
    collector: str,
    name: str,
    requests: int,
    warmup: int,
) -> float:
    from bench.inprocess import _count

    work = Path(tempfile.mkdtemp(prefix="observability-"))
    try:
        config = foundation_config(upstream, access_log=False)
        config["observability"] = _observability(name, collector)
        path = work / "config.json"
        path.write_text(json.dumps(config))
        low = _count(tools["valgrind"], tree, work, path, "", warmup)
        high = _count(tools["valgrind"], tree, work, path, "", warmup + requests)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return (high - low) / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instructions", action="store_true")
    parser.add_argument("--baseline", type=Path, help="with --instructions: another checkout")
    parser.add_argument(
        "--no-traces", dest="traces", action="store_false", help="with --instructions: skip"
    )
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--rounds", type=int, help="default: 12 (wrk), 1 (--instructions)")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=3.0)
    args = parser.parse_args()
    if args.instructions:
        names = ALL if args.traces else (OFF, METRICS)
        instructions(args.requests, 100, args.baseline, names, args.rounds or 1)
        return
    tools = ensure_tools()
    names = (OFF, METRICS, TRACING)
    rows: dict[str, list[tuple[float, float, float]]] = {n: [] for n in names}
    script = write_script(MODEL, False)
    with contextlib.ExitStack() as stack:
        upstream = stack.enter_context(run_upstream(tools["nginx"]))
        collector = stack.enter_context(_collector())
        gateways = {
            n: stack.enter_context(run_gateway(_spec(upstream, n, collector))) for n in names
        }
        for gateway in gateways.values():
            check_chat(gateway.chat_url, MODEL, False)
            run_wrk(
                tools["wrk"], LoadSpec(gateway.chat_url, script, args.connections, 2, args.warmup)
            )
        for i in range(args.rounds or 12):
            order = names[i % 3 :] + names[: i % 3]
            for name in order if i % 2 == 0 else tuple(reversed(order)):
                gateway = gateways[name]
                before = cpu_seconds(gateway.pid)
                load = run_wrk(
                    tools["wrk"],
                    LoadSpec(gateway.chat_url, script, args.connections, 2, args.seconds),
                )
                used = cpu_seconds(gateway.pid) - before
                one = run_wrk(tools["wrk"], LoadSpec(gateway.chat_url, script, 1, 1, 1.0))
                if load.failures or one.failures:
                    raise BenchError(f"{name}: failed requests in round {i + 1}")
                rows[name].append((load.rps, one.p50_ms, used / max(1, load.requests) * 1e6))
            print(
                f"round {i + 1:2}: "
                + "  ".join(
                    f"{n} {rows[n][-1][0]:7.0f} req/s p50@1 {rows[n][-1][1]:.3f} ms "
                    f"{rows[n][-1][2]:5.0f} µs CPU/req"
                    for n in names
                ),
                flush=True,
            )
    for name in (METRICS, TRACING):
        rps = [a[0] / b[0] for a, b in zip(rows[name], rows[OFF], strict=True)]
        p50 = [a[1] - b[1] for a, b in zip(rows[name], rows[OFF], strict=True)]
        cpu = [a[2] / b[2] for a, b in zip(rows[name], rows[OFF], strict=True)]
        print(_summary(f"{name} ÷ off, req/s @{args.connections}", rps))
        print(_summary(f"{name} − off, p50 @1 (ms)", p50))
        print(_summary(f"{name} ÷ off, CPU per request", cpu))


if __name__ == "__main__":
    main()
