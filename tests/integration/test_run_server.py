"""The integration tests' ``run_server``: a port taken between its pick and ``serve``'s bind
costs a second start on another port, not the test."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.integration import server as helper


def test_a_port_taken_before_serve_binds_it_means_another_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = helper.free_port
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        picks: list[int] = []

        def pick() -> int:  # the first pick is someone else's already
            picks.append(real() if picks else taken.getsockname()[1])
            return picks[-1]

        monkeypatch.setattr(helper, "free_port", pick)
        with helper.run_server(tmp_path, {"local": {"enabled": False}}) as server:
            assert len(picks) == 2
            assert server.url == f"http://127.0.0.1:{picks[1]}"
            assert "address already in use" not in server.log().lower()  # the second start's
