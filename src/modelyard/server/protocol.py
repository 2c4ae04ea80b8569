"""uvicorn's HTTP protocol (httptools), with one change to its graceful stop.

When a worker begins to stop (SIGTERM, a reload replacing workers, a drain), uvicorn closes at
once every connection that is not in the middle of a request. That includes a connection it
accepted a moment earlier whose request has not been read yet: the client sent a request to a
server that accepted the connection, and gets the connection closed without an answer. So a
connection whose first request is not complete when the stop begins is kept until that request
is answered (the answer says ``connection: close``), or for ``FIRST_REQUEST_S`` when nothing
comes. Idle keep-alive connections that have been answered are closed at once, as before: a
client reusing one just then meets HTTP/1.1's keep-alive race, which clients retry.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

FIRST_REQUEST_S = 5.0


class GracefulHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that answers a fresh connection's first request during a stop."""

    stopping = False

    def shutdown(self) -> None:
        if self.cycle is not None or self.transport.is_closing():
            super().shutdown()
            return
        self.stopping = True  # the request under way ends the connection when answered
        self.loop.call_later(FIRST_REQUEST_S, self._close_if_nothing_came)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if self.stopping and self.cycle is not None:
            self.cycle.keep_alive = False

    def _close_if_nothing_came(self) -> None:
        if self.cycle is None and not self.transport.is_closing():
            self.transport.close()
