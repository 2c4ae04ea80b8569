"""``kill -9`` of ``modelyard serve`` and of its workers (issue 17 #7).

What must hold, however a process dies: no process it started outlives it (checked by pid and
start time, and by the port being free to bind), a new ``serve`` on the same port starts and
answers at once, and what the design promises of the ledger holds: the workers of a killed
``serve`` stop gracefully, so every request they accepted, even one streaming at the time, is
answered and recorded. A killed worker is replaced by ``serve``; its ledger writer exits.
Every wait is for a condition (``tests.waiting``), never for a time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
import yaml

from tests.adversarial.processes import Proc, port_bindable, proc
from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.server import free_port
from tests.spawning import spawning
from tests.waiting import wait_until

KEY = "sk-upstream-process-test"
CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
# 300 ms between frames: the stream is certainly under way when serve is killed.
SLOW_STREAM = {"model": "slow", "stream": True, "messages": [{"role": "user", "content": "go"}]}
GATEWAY_WORKER = "multiprocessing.spawn"
LEDGER_WRITER = "ledger_child.py"
LOCAL_WORKER = "modelyard.local.worker"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=KEY) as upstream:
        yield upstream


def _config(fake: FakeOpenAI, local: bool) -> dict[str, object]:
    provider = {"type": "openai_compatible", "base_url": fake.base_url, "api_key": "env::K"}
    return {
        "local": {"enabled": local},
        "providers": {"fake": provider},
        "deployments": {
            "chat": {"targets": [{"provider": "fake", "model": "gpt-4o-mini"}]},
            "slow": {"targets": [{"provider": "fake", "model": "trickle-300"}]},
        },
    }


class Serve:
    """One ``modelyard serve`` process in a session of its own, and what it started."""

    def __init__(self, tmp: Path, config: dict[str, object], port: int, workers: int) -> None:
        spawning("a `modelyard serve` process", "integration")
        self.url = f"http://127.0.0.1:{port}"
        path = tmp / "modelyard.yaml"
        path.write_text(yaml.safe_dump(config))
        self.log = tmp / f"serve-{port}-{len(list(tmp.glob('serve-*.log')))}.log"
        args = [sys.executable, "-m", "modelyard.cli.main", "serve", "--config", str(path)]
        args += ["--port", str(port), "--workers", str(workers)]
        env = {**os.environ, "MODELYARD_DATA_DIR": str(tmp / "data"), "K": KEY}
        env.pop("MODELYARD_CONFIG", None)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        master = proc(self.process.pid)
        assert master is not None
        self.master = master
        self.seen: set[Proc] = {master}  # everything ever started, for the clean-up

    def ready(self) -> None:
        def probe() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited early:\n{self.log.read_text()}")
            try:
                return httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(probe, f"serve ready (log: {self.log})")

    def tree(self) -> list[Proc]:
        found = self.master.descendants()
        self.seen.update(found)
        return found

    def workers(self) -> list[Proc]:
        return [p for p in self.master.children() if GATEWAY_WORKER in p.cmdline()]

    def chat(self) -> str:
        reply = httpx.post(f"{self.url}/v1/chat/completions", json=CHAT, timeout=60)
        assert reply.status_code == 200, reply.text
        return reply.headers["x-request-id"]

    def stop(self) -> None:
        """A graceful stop, and then nothing it started may be left."""
        started = [*self.tree(), self.master]
        os.kill(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=120)
        _all_gone(started)

    def kill_everything(self) -> None:
        self.process.poll()
        for member in self.seen | set(self.tree()):
            if member.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(member.pid, signal.SIGKILL)
        self.process.wait()


@contextlib.contextmanager
def serving(tmp: Path, config: dict[str, object], port: int, workers: int = 2) -> Iterator[Serve]:
    server = Serve(tmp, config, port, workers)
    try:
        server.ready()
        yield server
    finally:
        server.kill_everything()


def _all_gone(procs: list[Proc]) -> None:
    wait_until(
        lambda: not [p for p in procs if p.alive()],
        f"every process gone: {[(p.pid, p.cmdline()[:80]) for p in procs if p.alive()]}",
    )


def _ledger(tmp: Path) -> set[str]:
    db = tmp / "data" / "modelyard.db"
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return {row[0] for row in conn.execute("SELECT request_id FROM usage_records")}


def _with_ledger_writer(server: Serve) -> tuple[Proc, Proc]:
    """A gateway worker that has started its ledger writer, and that writer."""

    def probe() -> tuple[Proc, Proc] | None:
        server.chat()  # a request makes the worker that took it start its writer
        for worker in server.workers():
            writers = [p for p in worker.children() if LEDGER_WRITER in p.cmdline()]
            if writers:
                return worker, writers[0]
        return None

    return wait_until(probe, "a gateway worker with its ledger writer")


def test_kill_9_of_serve_stops_its_workers_and_a_restart_serves(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    port = free_port()
    config = _config(fake, local=False)
    with serving(tmp_path, config, port) as server:
        answered = [server.chat() for _ in range(10)]
        _with_ledger_writer(server)
        with httpx.stream(
            "POST", f"{server.url}/v1/chat/completions", json=SLOW_STREAM, timeout=60
        ) as stream:
            streaming = stream.headers["x-request-id"]
            lines = stream.iter_lines()
            assert next(lines).startswith("data: ")  # under way, then serve dies
            started = server.tree()
            assert len(server.workers()) == 2
            server.process.send_signal(signal.SIGKILL)
            server.process.wait()
            # Its workers stop gracefully: the stream under way is finished, not cut.
            assert "data: [DONE]" in list(lines)
        _all_gone(started)
        assert port_bindable(port)
    recorded = _ledger(tmp_path)
    assert set(answered) | {streaming} <= recorded

    with serving(tmp_path, config, port) as again:
        restarted = again.chat()
        again.stop()
    assert restarted in _ledger(tmp_path)


def test_kill_9_of_a_single_process_serve_leaves_nothing(fake: FakeOpenAI, tmp_path: Path) -> None:
    """With one worker, serve is the gateway: its ledger writer must not outlive it."""
    port = free_port()
    with serving(tmp_path, _config(fake, local=False), port, workers=1) as server:
        answered = server.chat()
        wait_until(lambda: answered in _ledger(tmp_path), "the request in the ledger")
        started = server.tree()
        assert [p for p in started if LEDGER_WRITER in p.cmdline()], started
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        _all_gone(started)
        assert port_bindable(port)


def test_kill_9_of_a_worker_gets_it_replaced_and_its_ledger_writer_ends(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    with serving(tmp_path, _config(fake, local=False), free_port()) as server:
        victim, writer = _with_ledger_writer(server)
        before = set(server.workers())
        os.kill(victim.pid, signal.SIGKILL)
        _all_gone([victim, writer])

        def replaced() -> bool:
            now = set(server.workers())
            return len(now) == 2 and victim not in now and len(now - before) == 1

        wait_until(replaced, "serve to replace the killed worker")
        served = [server.chat() for _ in range(10)]
        server.stop()
    assert set(served) <= _ledger(tmp_path)


@pytest.mark.local_model
def test_kill_9_of_serve_with_the_local_model_leaves_nothing(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    port = free_port()
    config = _config(fake, local=True)
    with serving(tmp_path, config, port) as server:
        server.chat()
        started = server.tree()
        assert [p for p in started if LOCAL_WORKER in p.cmdline()], started
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        _all_gone(started)
        assert port_bindable(port)
    with serving(tmp_path, config, port) as again:
        again.chat()
        again.stop()
