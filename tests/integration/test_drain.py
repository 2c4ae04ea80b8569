"""A graceful stop (SIGTERM): new connections are refused at once, the stream under way runs to
its end, its ledger row is written, and ``serve`` exits 0, with one worker and with two.

The stream is slow on purpose (the fake waits 300 ms between frames), so it is still under way
when the signal arrives: it cannot have ended before its frames were sent."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.conftest import UPSTREAM_KEY
from tests.integration.server import RunningServer, run_server
from tests.waiting import wait_until


def _config(fake: FakeOpenAI) -> dict[str, object]:
    provider = {"type": "openai_compatible", "base_url": fake.base_url, "api_key": "env::K"}
    return {
        "server": {"drain_timeout_s": 120},
        "local": {"enabled": False},
        "providers": {"fake": provider},
        "deployments": {"slow": {"targets": [{"provider": "fake", "model": "trickle-300"}]}},
    }


def _refused(url: str) -> bool:
    """One worker closes its listening socket: refused. With several, uvicorn's supervisor
    holds the socket until the last worker has drained, so a new connection waits unanswered
    in the backlog and is reset when the supervisor exits: never served either way."""
    try:
        httpx.get(f"{url}/readyz", timeout=5)
    except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
        return True
    return False


def _stream_through_sigterm(server: RunningServer) -> tuple[str, list[str]]:
    """Start a stream, SIGTERM ``serve`` once its first frame came, read it to its end."""
    body = {"model": "slow", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    frames: list[str] = []
    url = f"{server.base_url}/chat/completions"
    with httpx.Client(timeout=120) as client, client.stream("POST", url, json=body) as reply:
        assert reply.status_code == 200
        lines = (line for line in reply.iter_lines() if line.startswith("data: "))
        frames.append(next(lines))
        os.kill(server.process.pid, signal.SIGTERM)
        frames.extend(lines)
        return reply.headers["x-request-id"], frames


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_drains_the_stream_under_way_and_exits_0(
    fake_upstream: FakeOpenAI, tmp_path: Path, workers: int
) -> None:
    config, env = _config(fake_upstream), {"K": UPSTREAM_KEY}
    with run_server(tmp_path, config, env, extra_args=("--workers", str(workers))) as server:
        rid, frames = _stream_through_sigterm(server)
        assert frames[-1] == "data: [DONE]", frames[-3:]
        assert len(frames) > 3  # role, content..., usage, [DONE]: the whole answer came
        wait_until(lambda: _refused(server.url), "new connections refused")
        assert server.process.wait(timeout=120) == 0, server.log()
    with sqlite3.connect(tmp_path / "data" / "modelyard.db") as db:
        rows = db.execute(
            "SELECT status FROM usage_records WHERE request_id = ?", (rid,)
        ).fetchall()
    assert rows == [(200,)]


def test_a_connection_accepted_before_the_stop_gets_its_request_answered(
    fake_upstream: FakeOpenAI, tmp_path: Path
) -> None:
    """A connection the worker accepted whose request was not complete when the stop began is
    answered (``connection: close``), not closed unanswered (``server/protocol.py``)."""
    config = _config(fake_upstream)
    config["deployments"]["quick"] = {  # type: ignore[index]
        "targets": [{"provider": "fake", "model": "gpt-4o-mini"}]
    }
    body = b'{"model":"quick","messages":[{"role":"user","content":"hi"}]}'
    head = b"POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\n"
    rest = b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
    with run_server(tmp_path, config, {"K": UPSTREAM_KEY}) as server:
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=60) as early:
            early.sendall(head)  # half a request: nothing the server can answer yet
            # A later connection answered: the earlier one was accepted before it (one worker
            # accepts its backlog in order).
            assert httpx.get(f"{server.url}/healthz", timeout=30).status_code == 200
            # A stream under way keeps the stopping worker alive while the rest is sent.
            with (
                httpx.Client(timeout=120) as client,
                client.stream(
                    "POST",
                    f"{server.base_url}/chat/completions",
                    json={
                        "model": "slow",
                        "stream": True,
                        "messages": [{"role": "user", "content": "x"}],
                    },
                ) as reply,
            ):
                lines = (line for line in reply.iter_lines() if line.startswith("data: "))
                next(lines)
                os.kill(server.process.pid, signal.SIGTERM)
                wait_until(lambda: "Shutting down" in server.log(), "the stop begun")
                early.sendall(rest)
                answer = _read_all(early)
                assert list(lines)[-1] == "data: [DONE]"
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        assert b"\r\nconnection: close\r\n" in answer.lower()
        assert b"chat.completion" in answer
        assert server.process.wait(timeout=120) == 0, server.log()


def _read_all(conn: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while chunk := conn.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)
