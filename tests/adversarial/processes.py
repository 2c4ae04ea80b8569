"""What a test needs to know about a process tree on Linux, read from /proc.

A process is named by its pid and its start time (``Proc``), so a pid the kernel hands to a new
process after the old one died is never mistaken for the old one. A zombie counts as gone: it
holds no socket and runs nothing, only its exit status waits for a parent to collect it.
"""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Proc:
    pid: int
    started: int  # clock ticks after boot (field 22 of /proc/PID/stat)

    def alive(self) -> bool:
        stat = _stat(self.pid)
        return stat is not None and stat[19] == str(self.started) and stat[0] != "Z"

    def cmdline(self) -> str:
        with contextlib.suppress(OSError):
            raw = Path(f"/proc/{self.pid}/cmdline").read_bytes()
            return raw.replace(b"\0", b" ").decode(errors="replace")
        return ""

    def children(self) -> list[Proc]:
        found: list[Proc] = []
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{self.pid}/task").iterdir():
                with contextlib.suppress(OSError):
                    for part in (task / "children").read_text().split():
                        child = proc(int(part))
                        if child is not None:
                            found.append(child)
        return found

    def descendants(self) -> list[Proc]:
        """Every process below this one, children first."""
        found: list[Proc] = []
        stack = self.children()
        while stack:
            current = stack.pop(0)
            found.append(current)
            stack.extend(current.children())
        return found


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def proc(pid: int) -> Proc | None:
    stat = _stat(pid)
    return None if stat is None else Proc(pid, int(stat[19]))


def port_bindable(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:port now (SO_REUSEADDR, as uvicorn binds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            return False
    return True
