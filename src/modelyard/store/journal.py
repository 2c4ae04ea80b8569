"""The ledger's write-ahead journal: what a process had begun and finished, kept through a kill.

The ledger's rows are written in batches every 0.2 s (``store.sink``); a process killed with
SIGKILL loses the rows still queued and leaves no trace of the requests it was serving. The
journal closes that gap at the cost of two ``os.write`` calls per request on an ``O_APPEND``
descriptor: a ``B`` line when a request is admitted (its id, time, project, key, endpoint,
deployment, stream flag, parent) and an ``E`` line with its ledger row when it finishes. A
write lands in the kernel's page cache, which outlives the process, so no fsync is needed for
the failure this guards against (a killed process; a lost machine loses the page cache too,
and the journal with it: see ``docs/scale-out.md``).

Each process holds one *slot* of the journal directory, ``<slot>.lock``, by an exclusive
``flock`` that the kernel releases when the process dies, however it dies. A starting process
takes the lowest free slot and then every slot nobody holds (its own predecessor's and any dead
sibling's), reads their segment files ``<slot>.<n>.jnl`` and hands back the rows to write:
each finished row as it was, and each request begun and never finished as an ``interrupted``
row (status ``INTERRUPTED``, no tokens). The ledger inserts with insert-or-ignore on the unique
request id, so a row that had been written already is not counted twice.

The file stays bounded: the ledger's batch writer reports every durable batch (``committed``),
and a segment all of whose rows are durable is deleted, the requests still open in it carried
forward into the current segment first (one write). The current segment is rotated once it
passes ``segment_bytes``, and emptied in place when nothing in it is outstanding.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, cast

import orjson

from modelyard.store.usage import INTERRUPTED, LedgerRow

log = logging.getLogger("modelyard.store")

SEGMENT_BYTES: Final = 1 << 20
MAX_SLOTS: Final = 4096
_NL: Final = orjson.OPT_APPEND_NEWLINE
_B, _E, _D = b"B", b"E", b"D"
_ROW_FIELDS: Final = len(LedgerRow.__args__)  # type: ignore[attr-defined]
# A begun request as its ``B`` line holds it.
Begun = tuple[str, float, str | None, str | None, str, str, bool, str | None]


@dataclass(eq=False, slots=True)
class Segment:
    """One journal file of this process."""

    path: Path
    fd: int
    # Begun and not finished: request id → its ``B`` line (carried forward on rotation).
    open: dict[str, bytes] = field(default_factory=dict)
    last: int = 0  # the count of rows handed to the writer when its last ``E`` line was written
    moved: Segment | None = None  # where its open requests went when it was retired


class Journal:
    """This process's journal; ``open_journal`` builds one. Not thread-safe: every call comes
    from the event loop's thread (the request path and the ledger's batch writer)."""

    def __init__(
        self,
        directory: Path,
        slot: int,
        lock_fd: int,
        put: Callable[[LedgerRow], bool],
        segment_bytes: int = SEGMENT_BYTES,
        first_segment: int = 0,
    ) -> None:
        self.directory = directory
        self.slot = slot
        self._lock_fd = lock_fd
        self._put = put
        self._segment_bytes = segment_bytes
        self._next = first_segment
        self._retired: list[Segment] = []
        self._handed = 0  # rows the ledger's queue took
        self._committed = 0  # rows the ledger's writer reported durable
        self.failures = 0
        self._recovered: list[Path] = []
        # Dead slots' lock files and descriptors, held until their rows are written.
        self._held: list[tuple[Path, int]] = []
        self._current = self._new_segment()

    def _new_segment(self) -> Segment:
        path = self.directory / f"{self.slot}.{self._next}.jnl"
        self._next += 1
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC | os.O_CLOEXEC
        return Segment(path, os.open(path, flags, 0o600))

    def begin(self, begun: Begun) -> Segment:
        """An admitted request: its ``B`` line (one write). Keep the segment for ``end``."""
        line = _B + orjson.dumps(begun, option=_NL)
        segment = self._current
        segment.open[begun[0]] = line
        try:
            os.write(segment.fd, line)
        except OSError as exc:
            self._failed(exc)
        return segment

    def end(self, segment: Segment, row: LedgerRow) -> None:
        """A finished request: its ledger row to the ledger's queue and into the journal (one
        write). A row the queue refuses (full: the store has been down for long) is dropped,
        as without the journal, and only its id is journaled (finished, not interrupted), so
        that the journal grows no faster than the queue while nothing can be deleted."""
        if segment.open.pop(row[0], None) is None:
            _forget(segment, row[0])  # carried forward since it began
        current = self._current
        try:
            if self._put(row):
                self._handed += 1
                current.last = self._handed
                os.writev(current.fd, (_E, orjson.dumps(row, option=_NL)))
            else:
                os.writev(current.fd, (_D, orjson.dumps((row[0],), option=_NL)))
        except OSError as exc:
            self._failed(exc)

    def _failed(self, exc: OSError) -> None:
        # The request goes on: the journal guards against a kill, the ledger still gets the row.
        self.failures += 1
        if self.failures == 1 or self.failures % 1000 == 0:
            log.error("ledger journal: write failed (%d so far): %s", self.failures, exc)

    def committed(self, rows: int) -> None:
        """The ledger's writer made ``rows`` more rows durable (in the order they were handed
        over): delete what that settles, rotate a full segment. Called by the batch writer,
        about five times a second at most."""
        self._committed += rows
        current = self._current
        try:
            if self._committed >= current.last and not current.open:
                os.ftruncate(current.fd, 0)  # nothing outstanding: start it over
            elif os.fstat(current.fd).st_size >= self._segment_bytes:
                self._retired.append(current)
                self._current = self._new_segment()
            self._retire()
        except OSError as exc:
            self._failed(exc)

    def _retire(self) -> None:
        """Delete the retired segments whose rows are all durable, carrying the requests still
        open in them into the current segment first."""
        keep = []
        current = self._current
        for segment in self._retired:
            if self._committed < segment.last:
                keep.append(segment)
                continue
            if segment.open:
                os.write(current.fd, b"".join(segment.open.values()))
                current.open.update(segment.open)
                segment.open.clear()
            segment.moved = current
            os.close(segment.fd)
            segment.path.unlink(missing_ok=True)
        self._retired = keep

    def adopt(self, paths: list[Path], locks: list[tuple[Path, int]]) -> None:
        """Recovered segments to delete, and dead slots' locks to free, once their rows are
        written (``recovered``)."""
        self._recovered.extend(paths)
        self._held.extend(locks)

    def recovered(self) -> None:
        """The recovered rows are written: delete what they came from, free the dead slots."""
        for path in self._recovered:
            path.unlink(missing_ok=True)
        self._recovered.clear()
        for path, fd in self._held:
            path.unlink(missing_ok=True)  # whoever locks it next checks it is still linked
            os.close(fd)  # closing the descriptor releases its lock
        self._held.clear()

    def close(self) -> None:
        """At a graceful stop, after the ledger's queue was written: delete the journal when
        every row is durable and nothing is open; otherwise keep it for the next start."""
        segments = [*self._retired, self._current]
        done = all(self._committed >= s.last and not s.open for s in segments)
        for segment in segments:
            os.close(segment.fd)
            if done:
                segment.path.unlink(missing_ok=True)
        if not done:
            log.warning("ledger journal %s kept for the next start", self.directory)
        self._retired = []
        for _, fd in self._held:
            os.close(fd)
        self._held.clear()
        if done:  # the slot's lock file too (a process locking it checks it is still linked)
            (self.directory / f"{self.slot}.lock").unlink(missing_ok=True)
        os.close(self._lock_fd)
        if done:  # and the directory when it was the last (a process starting in it retries)
            with contextlib.suppress(OSError):
                self.directory.rmdir()


def _forget(segment: Segment, request_id: str) -> None:
    moved = segment.moved
    while moved is not None and moved.open.pop(request_id, None) is None:
        moved = moved.moved


def open_journal(
    directory: Path, put: Callable[[LedgerRow], bool], segment_bytes: int = SEGMENT_BYTES
) -> tuple[Journal, list[LedgerRow]]:
    """Take a slot in ``directory`` and recover every slot no live process holds: the journal
    and the rows to write before serving (then call ``Journal.recovered``). Blocking file
    work: run it off the event loop."""
    for attempt in range(3):
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            slot, lock_fd = _claim(directory)
            break
        except FileNotFoundError:  # removed meanwhile by the last process to close cleanly
            if attempt == 2:
                raise
    held = [(slot, lock_fd)]
    for other in _slots(directory):
        if other != slot and (fd := _try_lock(directory / f"{other}.lock")) is not None:
            held.append((other, fd))
    rows: dict[str, LedgerRow] = {}
    paths: list[Path] = []
    for number, _ in held:
        found = sorted(directory.glob(f"{number}.*.jnl"), key=_segment_number)
        paths.extend(found)
        for row in replay(found):
            rows.setdefault(row[0], row)
    # Numbered after the recovered segments, which stay until their rows are written.
    first = max((_segment_number(p) for p in paths), default=-1) + 1
    journal = Journal(directory, slot, lock_fd, put, segment_bytes, first)
    journal.adopt(paths, [(directory / f"{n}.lock", fd) for n, fd in held[1:]])
    if rows:
        log.warning(
            "ledger journal: %d row(s) recovered from %d file(s) in %s",
            len(rows),
            len(paths),
            directory,
        )
    return journal, list(rows.values())


def replay(paths: list[Path]) -> list[LedgerRow]:
    """One slot's segments, oldest first, as rows: every finished request's row, then every
    request begun and not finished as ``interrupted``. A torn or garbled line (the process
    died writing it) is skipped."""
    begun: dict[str, Begun] = {}
    finished: dict[str, LedgerRow] = {}
    dropped: set[str] = set()  # finished, its row refused by a full queue
    last_heard = 0.0
    for path in paths:
        try:
            data = path.read_bytes()
            last_heard = max(last_heard, path.stat().st_mtime)
        except FileNotFoundError:
            continue
        for tag, value in _lines(data):
            if tag == _B and len(value) == 8:
                begun.setdefault(value[0], cast(Begun, tuple(value)))
            elif tag == _E and len(value) == _ROW_FIELDS:
                finished[value[0]] = cast(LedgerRow, tuple(value))
            elif tag == _D:
                dropped.add(value[0])
    interrupted = [
        interrupted_row(b, last_heard)
        for rid, b in begun.items()
        if rid not in finished and rid not in dropped
    ]
    return [*finished.values(), *interrupted]


def _lines(data: bytes) -> Iterator[tuple[bytes, list[Any]]]:
    lines = data.split(b"\n")
    for line in lines[:-1]:  # what follows the last newline is torn (or empty)
        try:
            value = orjson.loads(line[1:])
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, list) and value and isinstance(value[0], str):
            yield line[:1], value


def interrupted_row(begun: Begun, last_heard: float) -> LedgerRow:
    """The ledger row of a request its process never finished: status ``INTERRUPTED``, no
    tokens, no cost; its latency runs to when the journal was last written (at least)."""
    rid, created, project, key, endpoint, deployment, stream, parent = begun
    day = datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%d")
    latency = round(max(0.0, last_heard - created) * 1000, 3)
    return (
        rid, created, day, project, key, endpoint, deployment, None, None, INTERRUPTED, stream,
        0, 0, 0, 0, 0, None, latency, None, 0, False, parent, None, None, None, None,
    )  # fmt: skip


def _segment_number(path: Path) -> int:
    try:
        return int(path.name.split(".")[1])
    except (IndexError, ValueError):
        return -1


def _slots(directory: Path) -> list[int]:
    found = []
    for path in directory.glob("*.lock"):
        with contextlib.suppress(ValueError):
            found.append(int(path.stem))
    return sorted(found)


def _claim(directory: Path) -> tuple[int, int]:
    for slot in range(MAX_SLOTS):
        fd = _try_lock(directory / f"{slot}.lock")
        if fd is not None:
            return slot, fd
    raise OSError(f"ledger journal: all {MAX_SLOTS} slots of {directory} are held")


def _try_lock(path: Path) -> int | None:
    """The lock file's descriptor, locked, or None when a live process holds it (or it was
    deleted meanwhile: its holder closed it cleanly and unlinked it, and the next to create
    it takes it)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.stat(path).st_ino != os.fstat(fd).st_ino:
            raise FileNotFoundError(path)
    except (BlockingIOError, FileNotFoundError):
        os.close(fd)
        return None
    return fd
