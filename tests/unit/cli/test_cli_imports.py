"""What a CLI command imports: nothing of a feature its config leaves off, little for ``--help``.

Each case runs the command in a fresh interpreter through ``modelyard.cli.main.main`` (what the
``modelyard`` script calls) and lists ``sys.modules`` after it returned. ``chat --in-process``
builds the gateway and its request pipeline in the CLI's own process (``services/root.py``'s
``standalone_pipeline``); its one upstream refuses the connection, so the call fails (exit 1)
after everything the command needs was imported and used.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

# Each case runs a CLI command in a fresh interpreter (about a second of CPU): `make test` runs
# them; `make test-fast`, the inner loop, leaves them out.
pytestmark = pytest.mark.slow

_CHILD = textwrap.dedent(
    """
    import contextlib, io, json, sys

    from modelyard.cli.main import main

    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            code = main(sys.argv[1:])
    except SystemExit as exc:  # argparse's --help
        code = exc.code
    print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
    """
)

# Imported only where their feature is on: tracing, metrics, single sign-on, the portal, the
# PostgreSQL dialect, the learned router's training; genai-prices' data, for a config with no
# provider it prices.
OFF = (
    "genai_prices",
    "opentelemetry",
    "prometheus_client",
    "psutil",
    "joserfc",
    "cryptography",
    "jinja2",
    "numpy",
    "sklearn",
    "sqlalchemy.dialects.postgresql",
    "modelyard.portal",
    "modelyard.services.observed",
    "modelyard.observability.metrics",
    "modelyard.observability.tracing",
)
# What ``--help`` never needs: each command's module is imported only to run it.
HEAVY = ("pydantic", "aiohttp", "sqlalchemy", "starlette", "uvicorn", "yaml", "modelyard.services")

_CONFIG = {
    "local": {"enabled": False},
    "providers": {
        "fake": {"type": "openai_compatible", "base_url": "http://127.0.0.1:9/v1", "api_key": "k"}
    },
    "deployments": {
        "chat": {
            "targets": [{"provider": "fake", "model": "gpt-4o-mini"}],
            "retry": {"attempts": 1},
        }
    },
}


def _run(tmp_path: Path, *argv: str) -> tuple[int, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["code"], set(result["modules"])


def _loaded(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    return [p for p in packages if any(m == p or m.startswith(p + ".") for m in modules)]


def test_chat_in_process_imports_none_of_the_features_its_config_leaves_off(
    tmp_path: Path,
) -> None:
    config = tmp_path / "modelyard.yaml"
    config.write_text(yaml.safe_dump(_CONFIG))
    argv = ("chat", "--in-process", "--config", str(config), "-m", "chat", "hello")
    code, modules = _run(tmp_path, *argv)
    assert code == 1  # the upstream refused: the pipeline ran
    assert "modelyard.services.root" in modules
    assert "modelyard.services.pipeline" in modules
    assert _loaded(modules, OFF) == []


def test_config_check_imports_none_of_the_features_its_config_leaves_off(tmp_path: Path) -> None:
    config = tmp_path / "modelyard.yaml"
    config.write_text(yaml.safe_dump(_CONFIG))
    code, modules = _run(tmp_path, "config", "check", "--config", str(config))
    assert code == 0
    assert "modelyard.services.build" in modules  # the config was built, as serve builds it
    assert _loaded(modules, OFF) == []


def test_config_check_reads_the_list_prices_for_a_provider_that_has_them(tmp_path: Path) -> None:
    provider = {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "k"}
    config = tmp_path / "modelyard.yaml"
    config.write_text(yaml.safe_dump({**_CONFIG, "providers": {"fake": provider}}))
    code, modules = _run(tmp_path, "config", "check", "--config", str(config))
    assert code == 0
    assert "genai_prices.data" in modules


def test_the_catalog_listing_reads_the_list_prices(tmp_path: Path) -> None:
    code, modules = _run(tmp_path, "models", "--catalog", "--search", "gpt-4o-mini", "--json")
    assert code == 0
    assert "genai_prices.data" in modules


def test_help_imports_no_command(tmp_path: Path) -> None:
    code, modules = _run(tmp_path, "--help")
    assert code == 0
    assert "modelyard.cli.parser" in modules
    assert _loaded(modules, HEAVY) == []


_PREPARED = textwrap.dedent(
    """
    import argparse, os, sys
    from pathlib import Path

    from modelyard.cli import serve
    from modelyard.config import load_settings

    settings = load_settings(Path(sys.argv[1]))
    args = argparse.Namespace(log_level="warning", workers=1)
    serve._prepare_workers(settings, args, Path(sys.argv[2]))
    from modelyard.observability.metrics import MULTIPROC_ENV, multiprocess

    print(multiprocess(), os.environ[MULTIPROC_ENV] == sys.argv[2] + "/prometheus")
    """
)


def test_serve_keeps_prometheus_client_in_one_process_mode_in_its_own_process(
    tmp_path: Path,
) -> None:
    """``serve`` no longer imports prometheus-client with its module; with metrics on it loads
    it before it sets the workers' metrics directory, so its own process (the one worker,
    without ``--workers``) counts in memory as it did, and the spawned workers share files."""
    config = tmp_path / "modelyard.yaml"
    config.write_text(yaml.safe_dump({**_CONFIG, "observability": {"metrics": {"enabled": True}}}))
    argv = [sys.executable, "-c", _PREPARED, str(config), str(tmp_path)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["False", "True"]
