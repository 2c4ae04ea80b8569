"""``modelyard deployments history|rollback`` in process, against SQLite in a temp data dir."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
import yaml

from modelyard.cli.main import main
from modelyard.config import load_settings
from modelyard.services.deployments import sync_versions
from modelyard.store import database_url, open_store


def _write(path: Path, model: str) -> None:
    config = {
        "local": {"enabled": False},
        "providers": {"p": {"type": "openai_compatible", "base_url": "http://127.0.0.1:9/v1"}},
        "deployments": {"chat": {"targets": [{"provider": "p", "model": model}]}},
    }
    path.write_text(yaml.safe_dump(config))


def _serve_once(path: Path, data: Path) -> None:
    """What a server start does to the store."""

    async def run() -> None:
        store = await open_store(database_url(None, data))
        try:
            await sync_versions(store, load_settings(path))
        finally:
            await store.aclose()

    asyncio.run(run())


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MODELYARD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MODELYARD_DATABASE_URL", raising=False)
    path = tmp_path / "modelyard.yaml"
    monkeypatch.setenv("MODELYARD_CONFIG", str(path))
    _write(path, "m1")
    return path


def test_history_before_any_server_start(config: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["deployments", "history", "chat"]) == 0
    assert "no versions recorded yet" in capsys.readouterr().out
    assert main(["deployments", "history", "nope"]) == 1
    assert "no deployment 'nope' in the config or the store" in capsys.readouterr().err


def test_history_marks_the_live_version(config: Path, capsys: pytest.CaptureFixture[str]):
    _serve_once(config, config.parent / "data")
    _write(config, "m2")
    _serve_once(config, config.parent / "data")
    assert main(["deployments", "history", "chat"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("     1 ") and "config" in lines[0] and "p/m1" in lines[0]
    assert lines[1].startswith("*    2 ") and "p/m2" in lines[1]
    assert lines[2] == "(* live: version 2)"


def test_rollback_errors_exit_1(config: Path, capsys: pytest.CaptureFixture[str]):
    _serve_once(config, config.parent / "data")
    assert main(["deployments", "rollback", "chat", "4"]) == 1
    assert "deployment 'chat' has no version 4 (versions: 1..1)" in capsys.readouterr().err
    assert main(["deployments", "rollback", "other", "1"]) == 1
    assert "no deployment 'other' in the config" in capsys.readouterr().err


def test_rollback_with_a_stale_pid_file(config: Path, capsys: pytest.CaptureFixture[str]):
    data = config.parent / "data"
    _serve_once(config, data)
    _write(config, "m2")
    _serve_once(config, data)
    (data / "modelyard.pid").write_text("999999999\n")  # no such process
    assert main(["deployments", "rollback", "chat", "1"]) == 0
    out = capsys.readouterr().out
    assert "recorded version 3 (rollback to version 1: failover: p/m1)" in out
    assert "takes effect when the server next starts" in out
    # The rollback is in the audit log, by the OS user who ran it.
    assert main(["audit", "list", "--json", "--kind", "deployment."]) == 0
    entries = orjson.loads(capsys.readouterr().out)
    assert [(e["kind"], e["target"]) for e in entries] == [("deployment.rollback", "chat")]
    assert entries[0]["actor"].startswith("cli:")
    assert entries[0]["after"] == {
        "deployment": "chat",
        "version": 3,
        "source": "rollback:1",
        "spec": "failover: p/m1",
    }
