"""A real MCP server (the official ``mcp`` SDK, streamable HTTP) with two tools: ``add``, and
``fail``, which always fails. Served on a free loopback port for the tool-loop tests.

With ``hold`` set, a third tool ``hold`` sets ``held`` once it runs and returns only when the
test sets ``release`` (set anyway when the server stops): a tool call under way, on demand.

With ``token`` set, every request must carry ``Authorization: Bearer <token>`` (else 401):
the gateway's header secrets are checked to arrive. ``calls`` records each tool run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from threading import Event

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.fakes.serving import STOP_TIMEOUT_S, serve_in_thread


@dataclass
class CalcServer:
    url: str
    port: int
    calls: list[tuple[str, dict[str, object]]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # paths of requests refused for no token
    held: Event = field(default_factory=Event)  # a ``hold`` call is running
    release: Event = field(default_factory=Event)  # lets ``hold`` calls return


def calc_app(record: CalcServer | None = None, hold: bool = False) -> MCPServer:
    server = MCPServer("calc", instructions="A calculator.")

    @server.tool(description="Add two integers and return the sum.")
    def add(a: int, b: int) -> int:
        if record is not None:
            record.calls.append(("add", {"a": a, "b": b}))
        return a + b

    @server.tool(description="A tool that always fails.")
    def fail(reason: str = "no reason") -> str:
        if record is not None:
            record.calls.append(("fail", {"reason": reason}))
        raise ToolError(f"the fail tool failed: {reason}")

    if hold and record is not None:
        held = record

        @server.tool(name="hold", description="Wait until released, then say so.")
        async def hold_tool() -> str:
            held.calls.append(("hold", {}))
            held.held.set()
            await anyio.to_thread.run_sync(held.release.wait)
            return "released"

    return server


class _Bearer:
    def __init__(self, app: ASGIApp, token: str, record: CalcServer) -> None:
        self.app, self.token, self.record = app, token, record

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            if headers.get(b"authorization") != f"Bearer {self.token}".encode():
                self.record.refused.append(scope["path"])
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"unauthorized"})
                return
        await self.app(scope, receive, send)


class _Quiet(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


@contextmanager
def serve_calc(token: str | None = None, hold: bool = False) -> Iterator[CalcServer]:
    """The calculator on ``http://127.0.0.1:<free port>/mcp`` until the block ends."""
    record = CalcServer("", 0)
    app: ASGIApp = calc_app(record, hold).streamable_http_app(
        stateless_http=True, json_response=True
    )
    if token is not None:
        app = _Bearer(app, token, record)
    server, thread, port = serve_in_thread(app, "mcp-calc", _Quiet())
    record.url, record.port = f"http://127.0.0.1:{port}/mcp", port
    try:
        yield record
    finally:
        record.release.set()
        server.should_exit = True
        thread.join(STOP_TIMEOUT_S)
