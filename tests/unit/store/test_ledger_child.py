"""The SQLite ledger's writer process keeps nothing of its parent but its standard streams."""

from __future__ import annotations

import os
import pickle
import socket
import struct
import subprocess
import sys
from pathlib import Path

from modelyard.store.ledger_writer import CHILD


def _socket_inodes(pid: int) -> set[str]:
    links = (os.readlink(entry) for entry in Path(f"/proc/{pid}/fd").iterdir())
    return {link for link in links if link.startswith("socket:")}


def test_the_writer_closes_inherited_descriptors_and_ends_with_its_input(tmp_path: Path) -> None:
    # uvloop, the server's loop, spawns the writer without closing the server's descriptors:
    # passing one explicitly is the same situation with the standard library.
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        inode = f"socket:[{os.fstat(listening.fileno()).st_ino}]"
        child = subprocess.Popen(
            [sys.executable, "-I", str(CHILD), str(tmp_path / "ledger.db")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            pass_fds=[listening.fileno()],
        )
        assert child.stdin is not None and child.stdout is not None
        try:
            # Any batch gets one line back; by then the child is past its start.
            payload = pickle.dumps(("SELECT 1", 0, [], "SELECT 1", 0))
            child.stdin.write(struct.pack("<I", len(payload)) + payload)
            child.stdin.flush()
            assert child.stdout.readline().startswith((b"ok", b"error "))
            assert inode not in _socket_inodes(child.pid)
        finally:
            child.stdin.close()  # what the parent's death does too
            assert child.wait(timeout=60) == 0
