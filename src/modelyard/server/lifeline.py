"""A gateway worker's tie to the ``modelyard serve`` process that started it.

With ``--workers N`` (N > 1), ``serve`` is uvicorn's supervisor and the workers are its
children, sharing its listening socket. A supervisor that dies without stopping them (``kill
-9``, the OOM killer) used to leave them serving as orphans, holding the port, so the next
``serve`` failed with "address already in use". Each worker therefore asks the kernel, as it
builds its app, for ``SIGTERM`` when its parent dies (Linux ``PR_SET_PDEATHSIG``), and then
stops as on any ``SIGTERM``: it closes the listening socket at once, finishes the requests
under way and writes its ledger queue.

Why the kernel's signal and not a pipe the worker watches: uvicorn creates the workers and
every descriptor they inherit, and its pipe to each worker has both ends open in the worker, so
no end-of-file would ever come. The death signal fires when the *thread* that created the
process ends, not the process; uvicorn starts and replaces workers from its main thread, whose
end is the process's. The local model worker and the ledger writer, which our own threads
start, watch their standard input instead (``local/worker.py``, ``store/ledger_child.py``).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
from collections.abc import Mapping

log = logging.getLogger("modelyard")

SERVE_PID_ENV = "MODELYARD_SERVE_PID"
"""Set by ``serve`` to its own pid before it starts the workers."""

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def tie_to_serve(environ: Mapping[str, str] = os.environ) -> bool:
    """In a gateway worker: get ``SIGTERM`` when ``serve`` dies. True when the tie is made.

    Nothing to do in ``serve`` itself (one worker runs the app in its own process) or outside
    ``serve`` (tests, an ASGI server of the operator's choosing).
    """
    try:
        serve_pid = int(environ.get(SERVE_PID_ENV) or 0)
    except ValueError:
        return False
    if serve_pid <= 0 or serve_pid == os.getpid():
        return False
    if not _parent_death_signal(signal.SIGTERM):
        log.warning(
            "this platform cannot stop a gateway worker when its supervisor dies; "
            "after a crash of serve, stop the workers before restarting it"
        )
        return False
    if os.getppid() != serve_pid:  # serve died before the tie was made: nobody will signal
        os.kill(os.getpid(), signal.SIGTERM)
    return True


def _parent_death_signal(sig: signal.Signals) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)) == 0
