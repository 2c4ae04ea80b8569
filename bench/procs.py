"""Start, watch and stop the processes a benchmark needs; every one of them dies with the run."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

BENCH_DIR = Path(__file__).resolve().parent
WORK_DIR = BENCH_DIR / ".work"
REPO_DIR = BENCH_DIR.parent
LOOPBACK = "127.0.0.1"


class BenchError(RuntimeError):
    """A measurement could not be taken; the message says why."""


def free_port() -> int:
    """A loopback port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                text = Path(f"/proc/{pid}/task/{task}/children").read_text()
                found.extend(int(part) for part in text.split())
    return found


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it, from /proc."""
    seen: list[int] = []
    stack = [pid]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.append(current)
        stack.extend(_children(current))
    return seen


def own_rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` alone (VmRSS from /proc/PID/status; 0 once it is gone)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` plus all of its descendants."""
    return sum(own_rss_bytes(member) for member in descendants(pid))


@dataclass
class Service:
    """A child process started in its own session, so its whole group can be signalled."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 25) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the group and every descendant, then SIGKILL whatever is left of them.

        Descendants are signalled one by one too: a child may have put itself in a new session
        (a model worker does), where signalling our group would not reach it.
        """
        family = descendants(self.pid) if self.alive() else []
        _signal_group(self.pid, signal.SIGTERM)
        for member in family[1:]:
            _signal(member, signal.SIGTERM)
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(self.pid, signal.SIGKILL)
            self.process.wait(timeout=grace)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(_exists(m) for m in family[1:]):
            time.sleep(0.1)
        _signal_group(self.pid, signal.SIGKILL)
        for member in family[1:]:
            if _exists(member):
                _signal(member, signal.SIGKILL)


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _exists(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its parent counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


@contextlib.contextmanager
def service(
    name: str, argv: Sequence[str], env: Mapping[str, str] | None = None
) -> Iterator[Service]:
    """Run ``argv`` for the duration of the ``with`` block, output to ``bench/.work/logs``."""
    log_dir = WORK_DIR / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    full_env = dict(os.environ)
    full_env.update(env or {})
    with log_path.open("wb") as log:
        try:
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=full_env,
                start_new_session=True,
            )
        except OSError as exc:
            raise BenchError(f"could not start {name} ({argv[0]}): {exc}") from exc
    svc = Service(name, process, log_path)
    try:
        yield svc
    finally:
        svc.stop()


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The status of a GET to ``url`` (loopback only), or None if nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return None


def wait_ready(svc: Service, url: str, timeout: float) -> None:
    """Poll ``url`` until it answers 200; fail early if the process dies."""
    deadline = time.monotonic() + timeout
    status: int | None = None
    while time.monotonic() < deadline:
        if not svc.alive():
            raise BenchError(
                f"{svc.name} exited with code {svc.process.returncode} before it was ready "
                f"(log {svc.log_path}):\n{svc.log_tail()}"
            )
        status = http_status(url)
        if status == 200:
            return
        time.sleep(0.2)
    raise BenchError(
        f"{svc.name} not ready after {timeout:.0f}s (last status {status}) at {url} "
        f"(log {svc.log_path}):\n{svc.log_tail()}"
    )


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def stop_on_sigterm() -> None:
    """Turn SIGTERM/SIGHUP into KeyboardInterrupt so ``finally`` blocks stop the children."""
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)


def _cpu_times() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields), idle


def cpu_busy(seconds: float = 1.0) -> float:
    """Share of all CPUs in use over ``seconds`` (0..1), before the benchmark starts anything."""
    total0, idle0 = _cpu_times()
    time.sleep(seconds)
    total1, idle1 = _cpu_times()
    spent = total1 - total0
    return 1.0 - (idle1 - idle0) / spent if spent > 0 else 0.0


def warn_if_busy(limit: float = 0.15) -> float:
    """Measure how busy the machine is and say so loudly when others are using the CPUs."""
    busy = cpu_busy()
    if busy > limit:
        print(
            f"WARNING: the machine is already {busy:.0%} busy before the benchmark starts; "
            "other processes compete for the same cores and the figures will be low and noisy",
            flush=True,
        )
    return busy
