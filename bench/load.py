"""Drive ``wrk`` with a Lua script that posts a small chat request and reports JSON at the end."""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.procs import WORK_DIR, BenchError

_MARK = "BENCH_RESULT "
BENCH_KEY = "sk-bench"  # the peer's master key; Modelyard without keys ignores it

# ``done`` runs once, after all threads finished, with aggregated statistics (latency in µs).
_LUA = """wrk.method = "POST"
wrk.body = %(body)s
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%(mark)s{"requests":%%d,"duration_us":%%d,"bytes":%%d,' ..
    '"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d,' ..
    '"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"mean_us":%%.1f,"max_us":%%d}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
"""


def request_body(model: str, stream: bool) -> str:
    """The chat request every benchmark posts."""
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "Hello"}]}
    if stream:
        body["stream"] = True
    return json.dumps(body, separators=(",", ":"))


def write_script(model: str, stream: bool, key: str = BENCH_KEY) -> Path:
    """A Lua script for ``wrk -s`` posting the chat request for ``model`` with ``key``."""
    tag = "" if key == BENCH_KEY else "-keyed"
    name = f"{model}{'-stream' if stream else ''}{tag}"
    return write_body_script(name, request_body(model, stream), key)


def write_body_script(name: str, body: str, key: str = BENCH_KEY) -> Path:
    """A Lua script for ``wrk -s`` posting ``body`` (ASCII JSON) with ``key``."""
    lua_dir = WORK_DIR / "lua"
    lua_dir.mkdir(parents=True, exist_ok=True)
    path = lua_dir / f"{name}.lua"
    # A JSON string literal is also a valid Lua string literal for this ASCII body.
    path.write_text(_LUA % {"body": json.dumps(body), "mark": _MARK, "key": key})
    return path


@dataclass(frozen=True)
class LoadSpec:
    """One ``wrk`` invocation."""

    url: str
    script: Path
    connections: int
    threads: int
    seconds: float
    timeout_s: float = 10.0


@dataclass(frozen=True)
class LoadResult:
    """What one ``wrk`` run measured. ``failures`` counts non-2xx/3xx and socket errors."""

    connections: int
    seconds: float
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int

    @property
    def failures(self) -> int:
        return self.non_2xx + self.socket_errors

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "failures": self.failures}


def _parse(stdout: str) -> dict[str, Any]:
    for line in stdout.splitlines():
        if line.startswith(_MARK):
            parsed: dict[str, Any] = json.loads(line[len(_MARK) :])
            return parsed
    raise BenchError(f"wrk printed no result line:\n{stdout[-2000:]}")


def run_wrk(wrk: str, spec: LoadSpec) -> LoadResult:
    """Run ``wrk`` once and parse the result its ``done`` hook printed."""
    threads = max(1, min(spec.threads, spec.connections))
    argv = [
        wrk,
        f"-t{threads}",
        f"-c{spec.connections}",
        f"-d{max(1, round(spec.seconds))}s",
        f"--timeout={max(1, round(spec.timeout_s))}s",
        "--latency",
        "-s",
        str(spec.script),
        spec.url,
    ]
    proc = subprocess.run(
        argv, check=False, capture_output=True, text=True, timeout=spec.seconds + 60
    )
    log = WORK_DIR / "logs" / "wrk.log"
    with log.open("a") as handle:
        handle.write(f"$ {' '.join(argv)}\n{proc.stdout}{proc.stderr}\n")
    if proc.returncode != 0:
        raise BenchError(f"wrk exited {proc.returncode}: {proc.stderr.strip()}")
    raw = _parse(proc.stdout)
    duration_s = raw["duration_us"] / 1e6
    return LoadResult(
        connections=spec.connections,
        seconds=round(duration_s, 3),
        requests=raw["requests"],
        rps=raw["requests"] / duration_s if duration_s > 0 else 0.0,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        mean_ms=raw["mean_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        non_2xx=raw["status"],
        socket_errors=raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
    )
