"""Find the tools the benchmark drives (nginx, wrk, valgrind); install the Debian packages if
missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from bench.procs import WORK_DIR, BenchError

# Debian puts nginx in /usr/sbin, which is not on every user's PATH.
_EXTRA_PATHS = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def _which(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for folder in _EXTRA_PATHS:
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def _apt_install(packages: list[str]) -> None:
    if os.geteuid() != 0:
        names = " ".join(packages)
        raise BenchError(f"missing {names}: install with `sudo apt-get install {names}`")
    log_path = WORK_DIR / "logs" / "apt.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print(f"installing Debian packages: {' '.join(packages)} (log {log_path})", flush=True)
    with log_path.open("ab") as log:
        for argv in (
            ["apt-get", "update"],
            ["apt-get", "install", "-y", "--no-install-recommends", *packages],
        ):
            result = subprocess.run(
                argv, check=False, stdout=log, stderr=subprocess.STDOUT, env=env
            )
            if result.returncode != 0:
                raise BenchError(f"`{' '.join(argv)}` failed ({result.returncode}); see {log_path}")


def ensure_tools(*extra: str) -> dict[str, str]:
    """Absolute paths of ``nginx``, ``wrk`` and the ``extra`` binaries (each from the Debian
    package of its own name), installed with apt-get when absent."""
    wanted = {"nginx": "nginx", "wrk": "wrk", **{name: name for name in extra}}
    missing = [package for binary, package in wanted.items() if _which(binary) is None]
    if missing:
        _apt_install(missing)
    paths: dict[str, str] = {}
    for binary in wanted:
        path = _which(binary)
        if path is None:
            raise BenchError(f"{binary} still not found after installing it")
        paths[binary] = path
    return paths
