"""uvicorn's HTTP protocol (httptools), with two changes: its graceful stop, and its writes.

When a worker begins to stop (SIGTERM, a reload replacing workers, a drain), uvicorn closes at
once every connection that is not in the middle of a request. That includes a connection it
accepted a moment earlier whose request has not been read yet: the client sent a request to a
server that accepted the connection, and gets the connection closed without an answer. So a
connection whose first request is not complete when the stop begins is kept until that request
is answered (the answer says ``connection: close``), or for ``FIRST_REQUEST_S`` when nothing
comes. Idle keep-alive connections that have been answered are closed at once, as before: a
client reusing one just then meets HTTP/1.1's keep-alive race, which clients retry.

The writes of one turn of the event loop go out as one (``CoalescedWrites``): a JSON answer in
one system call instead of two, a short stream in one or two instead of four.

A client leaving is told to the request that is being answered (``Leaving``, the scope's
``modelyard.leave`` extension), so a streamed answer needs no task of its own waiting on
``receive`` for ``http.disconnect``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, MutableMapping
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

FIRST_REQUEST_S = 5.0
LEAVE = "modelyard.leave"  # the scope extension: ``{"notice": Leaving}``


class Leaving:
    """One request's notice of its client leaving before the answer is complete: the server
    calls ``callback`` (if one is set) once, when the connection is lost. The app sets it for as
    long as it wants to know and clears it after."""

    __slots__ = ("callback",)

    def __init__(self) -> None:
        self.callback: Callable[[], None] | None = None


def leaving(scope: MutableMapping[str, Any]) -> Leaving | None:
    """The request's ``Leaving``, when its server tells of a client leaving this way."""
    extensions = scope.get("extensions")
    extension = extensions.get(LEAVE) if extensions else None
    return extension["notice"] if extension else None


class GracefulHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that answers a fresh connection's first request during a stop."""

    stopping = False
    _leaving: Leaving | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        coalesced = CoalescedWrites(transport, self.loop)
        super().connection_made(coalesced)  # type: ignore[arg-type]  # a transport as uvicorn uses one

    def shutdown(self) -> None:
        if self.cycle is not None or self.transport.is_closing():
            super().shutdown()
            return
        self.stopping = True  # the request under way ends the connection when answered
        self.loop.call_later(FIRST_REQUEST_S, self._close_if_nothing_came)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if self.cycle is None:  # an upgrade: not ours to answer
            return
        if self.stopping:
            self.cycle.keep_alive = False
        # uvicorn tells only its newest cycle of a lost connection; so does this notice.
        notice = self._leaving = Leaving()
        self.scope["extensions"] = {LEAVE: {"notice": notice}}  # ASGI: an extension is a dict

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        notice = self._leaving
        if notice is not None and self.cycle is not None and self.cycle.disconnected:
            callback, notice.callback = notice.callback, None
            if callback is not None:
                callback()

    def _close_if_nothing_came(self) -> None:
        if self.cycle is None and not self.transport.is_closing():
            self.transport.close()


class CoalescedWrites:
    """A connection's transport whose writes made in one turn of the event loop go out as one.

    uvicorn writes a response's head, each part of its body and the end of a chunked body with
    a write each: a system call and a TCP segment apiece, four for a short stream. Here the
    first write of a turn schedules the flush for the loop's next turn (before it waits for
    I/O again), and the writes made meanwhile join it; closing flushes first."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def flush(self) -> None:
        pending = self._pending
        if not pending:
            return
        self._pending = []
        if not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
