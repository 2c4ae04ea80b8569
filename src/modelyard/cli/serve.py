"""``modelyard serve``: start the local runtime (if enabled), then the gateway workers."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import shutil
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn

from modelyard.config import ConfigError, Settings, config_path_from_env, data_dir, load_settings
from modelyard.local.cpus import cpu_count, default_threads
from modelyard.server.app import LOCAL_URL_ENV, SERVE_PID_ENV, GracefulHttpToolsProtocol
from modelyard.services.build import build_components, local_models
from modelyard.services.observing import (
    LOG_FORMAT_ENV,
    LOG_LEVEL_ENV,
    MULTIPROC_ENV,
    configure_logs,
)
from modelyard.services.root import REDIS_URL_ENV
from modelyard.services.tenancy import ADMIN_KEY_ENV
from modelyard.store import StoreError, database_url, open_store
from modelyard.store.tenancy import Tenancy

if TYPE_CHECKING:
    from modelyard.local.supervisor import LocalRuntime

log = logging.getLogger("modelyard")
PID_FILE = "modelyard.pid"
WORKER_READY_TIMEOUT_S = 60  # a new worker, on a reload with several (see uvicorn.run below)


def configure_logging(level: str) -> None:
    """Text until the config says otherwise; the workers get the same (``LOG_ENV``)."""
    os.environ[LOG_LEVEL_ENV] = level
    configure_logs(level, "text")


def run_serve(args: argparse.Namespace) -> int:
    configure_logging(args.log_level)
    path = config_path_from_env(args.config)
    try:
        settings = load_settings(path)
        components = build_components(settings, None)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    host = args.host or settings.server.host
    port = settings.server.port if args.port is None else args.port
    data = data_dir()
    data.mkdir(parents=True, exist_ok=True)
    keyed = _has_keys(settings, data)
    if keyed is None:  # the store failed: not a usage error
        return 1
    if not keyed and not _is_loopback(host) and not args.allow_unauthenticated:
        print(
            f"refusing to serve {host} without API keys: anyone who can reach it could spend "
            "your providers' credit. Create a key (modelyard admin init, then modelyard keys "
            "create), set MODELYARD_ADMIN_KEY, or pass --allow-unauthenticated.",
            file=sys.stderr,
        )
        return 2
    pid_file = data / PID_FILE
    pid_file.write_text(f"{os.getpid()}\n")
    runtime = _start_local(settings)
    _export_to_workers(path, runtime)
    print(f"Modelyard listening on http://{host}:{port} (OpenAI API at /v1)", flush=True)
    print(f"  serving models: {', '.join(sorted(components.table.names)) or 'none'}", flush=True)
    print(f"  data directory: {data}", flush=True)
    print(f"  config: {path or 'none (defaults)'}", flush=True)
    if not keyed:
        where = "on loopback only" if _is_loopback(host) else f"on {host} (--allow-unauthenticated)"
        print(f"  no API keys exist: every caller is accepted, {where}", flush=True)
    if args.workers is None:
        args.workers, why = default_workers(settings, cpu_count())
        print(f"  workers: {args.workers} ({why})", flush=True)
    _prepare_workers(settings, args, data)
    try:
        _run_uvicorn(settings, args, host, port)
    finally:
        pid_file.unlink(missing_ok=True)
        if runtime is not None:
            runtime.stop()
    return 0


def _run_uvicorn(settings: Settings, args: argparse.Namespace, host: str, port: int) -> None:
    # uvicorn drains on SIGTERM, then raises it again under the handler it found; ours makes
    # that a clean exit 0 (with the default handler serve died of the signal: status 143), as
    # an orchestrator expects of a graceful stop. Before uvicorn runs it stops serve the same.
    signal.signal(signal.SIGTERM, _drained)
    uvicorn.run(
        "modelyard.server.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=args.workers,
        loop="uvloop",
        http=GracefulHttpToolsProtocol,  # answers a fresh connection's request during a stop
        access_log=False,
        log_level=args.log_level,
        lifespan="on",
        timeout_graceful_shutdown=settings.server.drain_timeout_s,
        # A reload with several workers starts each new one before stopping its old one;
        # uvicorn's default 5 s for it to be ready was too short on a loaded 2-core machine
        # (the restart was aborted and the new config never served).
        timeout_worker_healthcheck=WORKER_READY_TIMEOUT_S,
    )


def _drained(signum: int, frame: FrameType | None) -> None:
    """SIGTERM raised again by uvicorn once it has drained: nothing left but to exit."""
    raise SystemExit(0)


def _export_to_workers(path: Path | None, runtime: LocalRuntime | None) -> None:
    """What each gateway worker reads from its environment as it builds its app."""
    os.environ["MODELYARD_CONFIG"] = str(path.resolve()) if path else ""
    os.environ[LOCAL_URL_ENV] = runtime.base_url if runtime else ""
    os.environ[SERVE_PID_ENV] = str(os.getpid())  # their parent, to stop when it dies


def default_workers(settings: Settings, cpus: int) -> tuple[int, str]:
    """The worker count when ``--workers`` is not given, and why.

    Without Redis each worker keeps its own rate limits and budgets (a key would get N times
    its limits) and its own background runs: so 1 unless the limits are shared. With them,
    one worker per CPU the embedded model's threads leave free, at least 1: the model's
    threads stall when another process takes their core (``default_threads``), and a worker
    on a core of its own is what more workers can add. Measured only on 2 cores, where the
    load generator shares them (``bench.machine workers``, 2026-12-07): 2 workers gave 1.21x
    one worker's requests/s at load 10 and 0.91x at load 5; so on such a machine with the
    model on, this gives 1."""
    if not (settings.limits.redis_url or os.environ.get(REDIS_URL_ENV)):
        return 1, "limits not shared in Redis: one worker keeps them exact"
    taken = 0
    if settings.local.enabled:
        taken = settings.local.threads or default_threads(cpus)
    workers = max(1, cpus - taken)
    return workers, f"{cpus} CPUs, {taken} for the embedded model's threads"


def _warn_unshared_limits(settings: Settings, workers: int) -> None:
    shared = settings.limits.redis_url or os.environ.get(REDIS_URL_ENV)
    if workers > 1 and not shared:
        print(
            f"  warning: {workers} workers without limits.redis_url: each worker keeps its own "
            f"rate limits and budgets, so a key gets up to {workers} times its limits",
            flush=True,
        )


def _log_as_configured(settings: Settings, level: str) -> None:
    log_format = settings.observability.logs.format
    os.environ[LOG_FORMAT_ENV] = log_format
    configure_logs(level, log_format)


def _prepare_workers(settings: Settings, args: argparse.Namespace, data: Path) -> None:
    """What the workers inherit: the log format, the metrics directory."""
    _log_as_configured(settings, args.log_level)
    _warn_unshared_limits(settings, args.workers)
    if settings.observability.metrics.enabled:
        # prometheus-client fixes its mode when imported: this process (uvicorn runs the one
        # worker in it) loads it before the directory is set, in one-process mode, as when
        # this module imported it; the workers spawned under it load it after, sharing files.
        import modelyard.services.observed  # noqa: F401

        _metrics_directory(data)


def _metrics_directory(data: Path) -> None:
    """A fresh directory for this run's worker metrics (prometheus-client's multi-process
    mode): values of an earlier run must not be summed into this one's."""
    directory = data / "prometheus"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(directory)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _has_keys(settings: Settings, data: Path) -> bool | None:
    """Whether any key exists (config, environment or store); None when the store fails."""
    if settings.server.api_keys or os.environ.get(ADMIN_KEY_ENV):
        return True
    url = database_url(settings.store.url.reveal() if settings.store.url else None, data)

    async def count() -> int:
        store = await open_store(url)
        try:
            async with store.transaction() as session:
                return len(await Tenancy(session).keys())
        finally:
            await store.aclose()

    try:
        return asyncio.run(count()) > 0
    except StoreError as exc:
        print(f"cannot open the store: {exc}", file=sys.stderr)
        return None


def run_reload(args: argparse.Namespace) -> int:
    """SIGHUP the server: one worker swaps its config in place; several are replaced in turn."""
    pid_file = Path(args.pid_file) if args.pid_file else data_dir() / PID_FILE
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError) as exc:
        print(f"cannot signal the server via {pid_file}: {exc}", file=sys.stderr)
        return 1
    print(f"asked the server (pid {pid}) to reload its config")
    return 0


def _start_local(settings: Settings) -> LocalRuntime | None:
    models = local_models(settings)
    if not models:
        return None
    from modelyard.local.supervisor import LocalRuntime, LocalRuntimeSpec

    spec = LocalRuntimeSpec(
        models=models,
        threads=settings.local.threads,
        ctx=settings.local.context,
        queue_size=settings.local.queue_size,
    )
    runtime = LocalRuntime(spec)
    log.info("loading local models: %s", ", ".join(models))
    runtime.start()
    return runtime
