"""``python -m bench.run``: Modelyard vs LiteLLM vs the bare fake upstream, in one run.

Every target gets a probe request (the answer must be the fake upstream's reply), a warm-up,
a throughput run at ``--connections`` connections and a latency run at one connection.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.gateways import (
    LITELLM_VERSION,
    MODEL,
    STREAM_MODEL,
    ensure_litellm,
    litellm_spec,
    modelyard_metered_spec,
    modelyard_spec,
    run_gateway,
)
from bench.interleaved import measure_interleaved
from bench.load import BENCH_KEY, LoadSpec, run_wrk, write_script
from bench.probe import check_chat
from bench.procs import REPO_DIR, WORK_DIR, BenchError, rss_bytes, stop_on_sigterm, warn_if_busy
from bench.report import (
    METERED,
    MODES,
    Results,
    TargetRun,
    format_table,
    rss_lines,
    target_lines,
    write_json,
)
from bench.tools import ensure_tools
from bench.upstream import Upstream, run_upstream

BANNER = "!" * 78


@dataclass(frozen=True)
class Plan:
    """What to run and with which settings."""

    wrk: str
    modes: tuple[str, ...]
    connections: int
    duration: float
    warmup: float


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per target")
    parser.add_argument("--connections", type=int, default=32, help="connections for req/s")
    parser.add_argument("--only", choices=MODES, help="run only one mode")
    parser.add_argument("--skip-litellm", action="store_true", help="do not measure the peer")
    parser.add_argument(
        "--skip-metered", action="store_true", help="do not measure Modelyard with auth and limits"
    )
    parser.add_argument(
        "--metered-rounds",
        type=int,
        default=10,
        help="interleaved rounds for the metered target (see bench/interleaved.py)",
    )
    parser.add_argument(
        "--metered-seconds", type=float, default=4.0, help="seconds per interleaved round"
    )
    parser.add_argument(
        "--no-access-log",
        action="store_true",
        help="start Modelyard with server.access_log: false",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed, too")
    return parser.parse_args(argv)


def loud(message: str) -> None:
    print(f"\n{BANNER}\n{message}\n{BANNER}\n", flush=True)


def measure(
    plan: Plan, results: Results, name: str, urls: dict[str, str], key: str = BENCH_KEY
) -> None:
    """Probe, warm up and measure one target in every planned mode."""
    for mode in plan.modes:
        stream = mode == "stream"
        model = STREAM_MODEL if stream else MODEL
        run = TargetRun(name=name, mode=mode)
        results.put(run)
        try:
            check_chat(urls[mode], model, stream, key)
            script = write_script(model, stream, key)
            threads = min(2, plan.connections)
            if plan.warmup > 0:
                warm = LoadSpec(urls[mode], script, plan.connections, threads, plan.warmup)
                run_wrk(plan.wrk, warm)
            spec = LoadSpec(urls[mode], script, plan.connections, threads, plan.duration)
            run.throughput = run_wrk(plan.wrk, spec)
            one = LoadSpec(urls[mode], script, 1, 1, plan.duration)
            run.latency = run_wrk(plan.wrk, one)
        except BenchError as exc:
            run.error = str(exc)
        if run.ok:
            assert run.throughput is not None and run.latency is not None
            print(
                f"  {name:<10} {mode:<10} {run.throughput.rps:>10,.0f} req/s"
                f"   p50 {run.latency.p50_ms:.3f} ms   p99 {run.latency.p99_ms:.3f} ms",
                flush=True,
            )
        else:
            detail = run.error or (
                f"{run.failures} failed requests (non-2xx or socket errors); see "
                f"{WORK_DIR / 'logs' / 'wrk.log'}"
            )
            loud(f"MEASUREMENT FAILED: {name} {mode}: {detail}")


def _gateway_urls(chat_url: str) -> dict[str, str]:
    return {"nonstream": chat_url, "stream": chat_url}


def run_modelyard(plan: Plan, results: Results, upstream: Upstream, access_log: bool) -> None:
    print("modelyard: starting", flush=True)
    try:
        with run_gateway(modelyard_spec(upstream, access_log)) as gateway:
            measure(plan, results, "modelyard", _gateway_urls(gateway.chat_url))
            results.rss["modelyard"] = rss_bytes(gateway.pid)
    except BenchError as exc:
        results.missing["modelyard"] = "did not start"
        loud(f"MODELYARD COULD NOT BE MEASURED: {exc}")


def run_modelyard_metered(plan: Plan, results: Results, upstream: Upstream) -> None:
    """Modelyard with a project key, RPM/TPM limits, a budget and the usage ledger on."""
    print("modelyard with auth, limits and the ledger: starting", flush=True)
    try:
        spec, key = modelyard_metered_spec(upstream)
        with run_gateway(spec) as gateway:
            measure(plan, results, METERED, _gateway_urls(gateway.chat_url), key)
            results.rss[METERED] = rss_bytes(gateway.pid)
    except BenchError as exc:
        results.missing[METERED] = "did not start"
        loud(f"METERED MODELYARD COULD NOT BE MEASURED: {exc}")


def run_interleaved(
    plan: Plan, results: Results, upstream: Upstream, args: argparse.Namespace
) -> None:
    """The metered target: both configurations loaded in alternating rounds."""
    print(
        f"modelyard and metered, interleaved: {args.metered_rounds} rounds of "
        f"{args.metered_seconds:g} s each",
        flush=True,
    )
    try:
        results.interleaved = measure_interleaved(
            plan.wrk,
            upstream,
            rounds=args.metered_rounds,
            seconds=args.metered_seconds,
            connections=plan.connections,
        )
    except BenchError as exc:
        loud(f"THE INTERLEAVED METERED MEASUREMENT FAILED: {exc}")
        return
    for line in results.interleaved.lines():
        print(f"  {line}", flush=True)


def run_litellm(plan: Plan, results: Results, upstream: Upstream, cli: Path) -> None:
    print("litellm: starting", flush=True)
    try:
        with run_gateway(litellm_spec(cli, upstream)) as gateway:
            measure(plan, results, "litellm", _gateway_urls(gateway.chat_url))
            results.rss["litellm"] = rss_bytes(gateway.pid)
    except BenchError as exc:
        results.missing["litellm"] = "did not start"
        loud(f"THE PEER (LiteLLM) COULD NOT BE MEASURED: {exc}")


def _version(argv: list[str]) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        proc = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=10)
        return (proc.stdout + proc.stderr).strip().splitlines()[0]
    return "unknown"


def _modes(args: argparse.Namespace) -> tuple[str, ...]:
    return (args.only,) if args.only else MODES


def describe(args: argparse.Namespace, tools: dict[str, str]) -> dict[str, object]:
    """The settings and versions recorded with the results."""
    try:
        modelyard_version = importlib.metadata.version("modelyard")
    except importlib.metadata.PackageNotFoundError:
        modelyard_version = "not installed"
    return {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "connections": args.connections,
        "modes": list(_modes(args)),
        "modelyard_access_log": not args.no_access_log,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "modelyard": modelyard_version,
        "litellm": None if args.skip_litellm else LITELLM_VERSION,
        "nginx": _version([tools["nginx"], "-v"]),
        "wrk": _version([tools["wrk"], "-v"]),
        "commit": _version(["git", "-C", str(REPO_DIR), "rev-parse", "--short", "HEAD"]),
    }


def _peer(args: argparse.Namespace, results: Results) -> Path | None:
    if args.skip_litellm:
        results.missing["litellm"] = "skipped (--skip-litellm)"
        return None
    try:
        return ensure_litellm()
    except BenchError as exc:
        results.missing["litellm"] = "not installed"
        loud(f"THE PEER (LiteLLM) IS MISSING, no ratio will be printed: {exc}")
        return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    try:
        return run(args)
    except BenchError as exc:
        loud(f"BENCHMARK FAILED: {exc}")
        return 1


def run(args: argparse.Namespace) -> int:
    """Measure everything, print the tables, write the JSON; the exit code of ``main``."""
    tools = ensure_tools()
    results = Results(settings=describe(args, tools))
    results.settings["cpu_busy_before"] = round(warn_if_busy(), 3)
    plan = Plan(
        wrk=tools["wrk"],
        modes=_modes(args),
        connections=args.connections,
        duration=args.duration,
        warmup=args.warmup,
    )
    cli = _peer(args, results)
    with run_upstream(tools["nginx"]) as upstream:
        print(f"upstream: nginx on port {upstream.port}", flush=True)
        upstream_urls = {
            "nonstream": f"{upstream.base_url}/chat/completions",
            "stream": f"{upstream.stream_base_url}/chat/completions",
        }
        measure(plan, results, "upstream", upstream_urls)
        run_modelyard(plan, results, upstream, access_log=not args.no_access_log)
        if not args.skip_metered:
            run_modelyard_metered(plan, results, upstream)
            if "nonstream" in plan.modes:
                run_interleaved(plan, results, upstream, args)
        if cli is not None:
            run_litellm(plan, results, upstream, cli)

    print()
    for mode in plan.modes:
        print(format_table(results, mode), end="\n\n")
    for line in rss_lines(results):
        print(line)
    lines, passed = target_lines(results)
    print("\ntargets (issue):")
    for line in lines:
        print(f"  {line}")
    if args.skip_litellm:
        print("\nno peer in this run (--skip-litellm): no modelyard ÷ litellm ratio")
    elif "litellm" in results.missing:
        loud(f"NO PEER IN THIS RUN: litellm {results.missing['litellm']}")
    out = WORK_DIR / f"results-{time.strftime('%Y%m%d-%H%M%S')}.json"
    write_json(results, out, passed)
    print(f"\nresults written to {out}")
    failed = any(not run.ok for runs in results.runs.values() for run in runs.values())
    return 1 if failed or "modelyard" in results.missing or (args.strict and not passed) else 0


if __name__ == "__main__":
    sys.exit(main())
