"""A gateway worker's tie to ``serve``: the kernel's SIGTERM when its parent dies, by any signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from modelyard.server.lifeline import SERVE_PID_ENV, tie_to_serve
from tests.waiting import DEADLINE_S

# The worker: ties itself to the pid it is given, says so, and reports the SIGTERM it gets.
WORKER = f"""
import os, signal, sys
from modelyard.server.lifeline import tie_to_serve
def stop(sig, frame):
    print("SIGTERM", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
signal.alarm({int(DEADLINE_S)})  # no SIGTERM ever: it ends anyway, and the test fails, not hangs
pid = os.getppid() if sys.argv[1] == "parent" else int(sys.argv[1])
print("tied" if tie_to_serve({{"{SERVE_PID_ENV}": str(pid)}}) else "untied", flush=True)
while True:
    signal.pause()
"""
# ``serve``: starts the worker, says its pid, and waits to be killed.
SERVE = """
import subprocess, sys
worker = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]])
print(worker.pid, flush=True)
worker.wait()
"""


def test_nothing_is_tied_outside_a_worker_of_serve() -> None:
    assert not tie_to_serve({})
    assert not tie_to_serve({SERVE_PID_ENV: "not a pid"})
    assert not tie_to_serve({SERVE_PID_ENV: str(os.getpid())})  # one worker: serve itself


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize("tied_to", ["parent", "gone"])
def test_a_worker_gets_sigterm_when_serve_dies_or_is_already_gone(tied_to: str) -> None:
    # "gone": the worker is told of a serve that is not its parent (any more): it stops at once.
    target = "parent" if tied_to == "parent" else str(os.getpid())
    serve = subprocess.Popen(
        [sys.executable, "-c", SERVE, WORKER, target], stdout=subprocess.PIPE, text=True
    )
    assert serve.stdout is not None
    worker_pid = int(serve.stdout.readline())
    try:
        if tied_to == "parent":
            assert serve.stdout.readline().strip() == "tied"
            serve.kill()
        # "gone": the signal arrives inside tie_to_serve, before it could say "tied".
        assert serve.stdout.readline().strip() == "SIGTERM"
    finally:
        serve.kill()
        serve.wait()
        if os.path.exists(f"/proc/{worker_pid}"):
            os.kill(worker_pid, signal.SIGKILL)
