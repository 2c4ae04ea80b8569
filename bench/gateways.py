"""The gateways under test: Modelyard (project venv) and the LiteLLM proxy (its own venv)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bench.procs import LOOPBACK, REPO_DIR, WORK_DIR, BenchError, free_port, service, wait_ready
from bench.upstream import Upstream

LITELLM_VERSION = "1.100.5"
LITELLM_VENV = WORK_DIR / "litellm-venv"
MODEL = "bench"
STREAM_MODEL = "bench-stream"
UPSTREAM_MODEL = "gpt-4o-mini"


@dataclass(frozen=True)
class GatewaySpec:
    """How to start one gateway and know it is ready."""

    name: str
    argv: list[str]
    ready_path: str
    port: int
    env: Mapping[str, str] = field(default_factory=dict)
    ready_timeout: float = 120.0


@dataclass(frozen=True)
class Gateway:
    """A running gateway: where to post, and which process to weigh."""

    name: str
    port: int
    pid: int

    @property
    def chat_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/v1/chat/completions"


@contextlib.contextmanager
def run_gateway(spec: GatewaySpec) -> Iterator[Gateway]:
    """Start the gateway, wait for its readiness endpoint, stop its process group afterwards."""
    with service(spec.name, spec.argv, spec.env) as svc:
        wait_ready(svc, f"http://{LOOPBACK}:{spec.port}{spec.ready_path}", spec.ready_timeout)
        yield Gateway(name=spec.name, port=spec.port, pid=svc.pid)


def _write_yaml(name: str, data: object) -> Path:
    path = WORK_DIR / "configs" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def modelyard_config(upstream: Upstream, access_log: bool = True) -> dict[str, object]:
    """The Modelyard config: no embedded model, one deployment per upstream variant."""
    config: dict[str, object] = {
        "local": {"enabled": False},
        "providers": {
            "fake": {
                "type": "openai_compatible",
                "base_url": upstream.base_url,
                "api_key": "bench-key",
            },
            "fake_stream": {
                "type": "openai_compatible",
                "base_url": upstream.stream_base_url,
                "api_key": "bench-key",
            },
        },
        "deployments": {
            MODEL: {"targets": [{"provider": "fake", "model": UPSTREAM_MODEL}]},
            STREAM_MODEL: {"targets": [{"provider": "fake_stream", "model": UPSTREAM_MODEL}]},
        },
    }
    if not access_log:
        config["server"] = {"access_log": False}
    return config


def foundation_config(upstream: Upstream, access_log: bool = True) -> dict[str, object]:
    """As the foundation issue measured it: no keys, no limits, no usage ledger."""
    return {**modelyard_config(upstream, access_log), "store": {"usage_ledger": False}}


def modelyard_bin() -> Path:
    """The console script next to the interpreter running the benchmark (the project venv)."""
    candidates = [
        Path(sys.executable).parent / "modelyard",
        REPO_DIR / ".venv" / "bin" / "modelyard",
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise BenchError("no `modelyard` console script: run `make install` first")


def modelyard_spec(
    upstream: Upstream,
    access_log: bool = True,
    extra: dict[str, object] | None = None,
    name: str = "modelyard",
    workers: int = 1,
) -> GatewaySpec:
    """``modelyard serve`` on ``workers`` workers with the benchmark config (plus ``extra``
    top-level sections); its config file and scratch data dir are named after ``name``, so
    several configurations can run at once."""
    config = _write_yaml(
        f"{name}.yaml", {**foundation_config(upstream, access_log), **(extra or {})}
    )
    data_dir = WORK_DIR / f"{name}-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [str(modelyard_bin()), "serve", "--host", LOOPBACK, "--port", str(port)]
    argv += ["--workers", str(workers), "--config", str(config)]
    return GatewaySpec(
        name=name,
        argv=argv,
        ready_path="/readyz",
        port=port,
        env={"MODELYARD_DATA_DIR": str(data_dir)},
    )


METERED_DATA = WORK_DIR / "modelyard-metered-data"


def modelyard_metered_spec(upstream: Upstream) -> tuple[GatewaySpec, str]:
    """``modelyard serve`` with a project key carrying RPM/TPM limits and a budget, prices for
    the upstream model (so every request is costed), and the usage ledger in SQLite. Returns
    the spec and the key. Limits are set far above what the run can reach: the point is what
    checking and settling them costs, not refusals."""
    shutil.rmtree(METERED_DATA, ignore_errors=True)
    METERED_DATA.mkdir(parents=True)
    key = asyncio.run(_seed_key(METERED_DATA, limited=not os.environ.get("BENCH_NO_LIMITS")))
    config = modelyard_config(upstream)
    if os.environ.get("BENCH_NO_LEDGER"):  # to split the cost: limits and auth alone
        config["store"] = {"usage_ledger": False}
    config["prices"] = {
        f"{p}/{UPSTREAM_MODEL}": {"input": 0.15, "output": 0.6} for p in ("fake", "fake_stream")
    }
    path = _write_yaml("modelyard-metered.yaml", config)
    port = free_port()
    argv = [str(modelyard_bin()), "serve", "--host", LOOPBACK, "--port", str(port)]
    argv += ["--workers", "1", "--config", str(path)]
    env = {"MODELYARD_DATA_DIR": str(METERED_DATA)}
    return GatewaySpec("modelyard-metered", argv, "/readyz", port, env), key


async def _seed_key(data: Path, limited: bool = True) -> str:
    from modelyard.services.tenancy import KeySpec, TenancyAdmin
    from modelyard.store import open_store
    from modelyard.tenancy.keys import Principal
    from modelyard.tenancy.model import Limits

    store = await open_store(f"sqlite+aiosqlite:///{data / 'modelyard.db'}")
    try:
        admin = TenancyAdmin(store)
        operator = Principal("bench", role="operator")
        huge = Limits(
            rpm=100_000_000,
            tpm=1_000_000_000,
            daily_budget_micros=10**15,
            monthly_budget_micros=10**15,
        )
        if not limited:  # BENCH_NO_LIMITS: auth and the ledger alone
            huge = Limits()
        await admin.create_project(operator, "bench", None, huge)
        _, fresh = await admin.create_key(operator, KeySpec("bench", limits=huge))
        return fresh.secret
    finally:
        await store.aclose()


def ensure_litellm() -> Path:
    """The ``litellm`` CLI from ``bench/.work/litellm-venv``, creating the venv on first use."""
    cli = LITELLM_VENV / "bin" / "litellm"
    marker = LITELLM_VENV / f".installed-{LITELLM_VERSION}"
    if cli.is_file() and marker.is_file():
        return cli
    log_path = WORK_DIR / "logs" / "litellm-install.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    print(f"installing litellm[proxy]=={LITELLM_VERSION} into {LITELLM_VENV} (log {log_path})")
    steps = [
        ["python3", "-m", "venv", str(LITELLM_VENV)],
        [
            str(LITELLM_VENV / "bin" / "pip"),
            "install",
            "--disable-pip-version-check",
            f"litellm[proxy]=={LITELLM_VERSION}",
        ],
    ]
    with log_path.open("ab") as log:
        for argv in steps:
            result = subprocess.run(argv, check=False, stdout=log, stderr=subprocess.STDOUT)
            if result.returncode != 0:
                raise BenchError(f"`{' '.join(argv)}` failed ({result.returncode}); see {log_path}")
    if not cli.is_file():
        raise BenchError(f"litellm installed but {cli} is missing; see {log_path}")
    marker.touch()
    return cli


def litellm_config(upstream: Upstream) -> dict[str, object]:
    """LiteLLM's proxy config: the same two models, ``openai/`` pointed at the fake upstream."""

    def entry(name: str, base_url: str) -> dict[str, object]:
        params = {"model": f"openai/{UPSTREAM_MODEL}", "api_base": base_url, "api_key": "bench-key"}
        return {"model_name": name, "litellm_params": params}

    return {
        "model_list": [
            entry(MODEL, upstream.base_url),
            entry(STREAM_MODEL, upstream.stream_base_url),
        ],
        "litellm_settings": {"telemetry": False},
    }


def litellm_spec(cli: Path, upstream: Upstream) -> GatewaySpec:
    """``litellm --config`` on one uvicorn worker, kept off the network outside loopback."""
    config = _write_yaml("litellm.yaml", litellm_config(upstream))
    port = free_port()
    argv = [str(cli), "--config", str(config), "--host", LOOPBACK, "--port", str(port)]
    argv += ["--num_workers", "1", "--telemetry", "False"]
    env = {
        # Use the bundled price map instead of fetching one from the internet at start-up.
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    return GatewaySpec(
        name="litellm", argv=argv, ready_path="/health/readiness", port=port, env=env
    )
