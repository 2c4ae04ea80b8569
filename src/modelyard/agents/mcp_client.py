"""An MCP client for the tool loop, on the official ``mcp`` SDK: list a server's tools, call one.

A server is reached over streamable HTTP, or launched as a stdio subprocess when the operator
configured it so (never from a request). Each list or call opens its own session: tool calls
are seconds apart while the model thinks, and a session per call holds no connection open
between requests. Failures become core errors (listing) or the spec's ``mcp_call`` error
objects (calling), their texts scrubbed of the server's header values and bounded.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import orjson

from modelyard.core.errors import ModelyardError, ToolServerError

if TYPE_CHECKING:
    # The SDK and the HTTP client are imported where a tool server is first reached, not
    # with this module: together about 60 MB and 0.4 s in every worker, which most
    # deployments never use.
    from mcp import Client

    from modelyard.agents.outbound import CheckedBackend

JSON = dict[str, Any]
_MAX_DETAIL = 300  # characters of an exception's text shown in an error


@dataclass(frozen=True, slots=True)
class ServerTarget:
    """Where one labelled server is and how to reach it. ``checked``: its addresses are
    resolved and checked at connect (a request's URL, private addresses not allowed)."""

    label: str
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] | None = None
    checked: bool = True
    timeout_s: float = 30.0

    def __repr__(self) -> str:  # headers and env may hold secrets
        return f"ServerTarget({self.label!r})"


@dataclass(frozen=True, slots=True)
class ListedTool:
    """One tool as listed (the spec's ``MCPListToolsTool``)."""

    name: str
    input_schema: JSON
    description: str | None = None
    annotations: JSON | None = None

    def as_json(self) -> JSON:
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_schema,
            "annotations": self.annotations,
        }


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """A call's result: ``output`` or ``error`` (the spec's ``MCPToolCallError``)."""

    output: str | None
    error: JSON | None
    latency_s: float
    bytes_in: int  # the arguments sent
    bytes_out: int  # the result received

    @property
    def ok(self) -> bool:
        return self.error is None


class _Scrub:
    """Removes the target's header and env values from a text before it is shown."""

    def __init__(self, target: ServerTarget) -> None:
        self._values = [v for v in (*target.headers.values(), *(target.env or {}).values()) if v]

    def __call__(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, "***")
        return text[:_MAX_DETAIL]


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside (anyio's task groups wrap them in exception groups)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


@asynccontextmanager
async def _session(target: ServerTarget, backend: CheckedBackend) -> AsyncIterator[Client]:
    import httpx2
    from mcp import Client, StdioServerParameters
    from mcp.client.streamable_http import streamable_http_client

    from modelyard.agents.outbound import CheckedTransport

    if target.command is not None:
        params = StdioServerParameters(
            command=target.command, args=list(target.args), env=dict(target.env or {}) or None
        )
        async with Client(params, cache=None, read_timeout_seconds=target.timeout_s) as client:
            yield client
        return
    transport = CheckedTransport(backend) if target.checked else None
    http = httpx2.AsyncClient(
        headers=dict(target.headers),
        timeout=httpx2.Timeout(target.timeout_s),
        transport=transport,
        trust_env=False,
    )
    async with http:
        stream = streamable_http_client(target.url or "", http_client=http)
        async with Client(stream, cache=None, read_timeout_seconds=target.timeout_s) as client:
            yield client


async def list_tools(target: ServerTarget) -> list[ListedTool]:
    """Every tool the server lists (all pages), or a ``ToolServerError`` naming the label."""
    from modelyard.agents.outbound import CheckedBackend

    backend = CheckedBackend(target.label)
    scrub = _Scrub(target)
    tools: list[ListedTool] = []
    try:
        with anyio.fail_after(target.timeout_s):
            async with _session(target, backend) as client:
                cursor: str | None = None
                for _page in range(100):
                    page = await client.list_tools(cursor=cursor)
                    tools.extend(
                        ListedTool(t.name, dict(t.input_schema), t.description, _annotations(t))
                        for t in page.tools
                    )
                    cursor = page.next_cursor
                    if not cursor:
                        break
    except Exception as exc:  # anything the SDK or the network raises: one translation
        if backend.refusal is not None:
            raise backend.refusal from exc
        leaf = _leaf(exc)
        if isinstance(leaf, ModelyardError):
            raise leaf from exc
        raise ToolServerError(
            f"MCP server {target.label!r}: cannot list its tools "
            f"({type(leaf).__name__}: {scrub(str(leaf)) or 'no detail'})",
            param="tools",
            code="mcp_server_error",
        ) from exc
    return tools


def _annotations(tool: Any) -> JSON | None:
    found = getattr(tool, "annotations", None)
    return found.model_dump(exclude_none=True, by_alias=True) if found is not None else None


async def call_tool(
    target: ServerTarget, name: str, arguments: str, max_bytes: int = 1_000_000
) -> ToolOutcome:
    """Run one tool. Never raises for the tool's or the server's failure: that is the
    outcome's ``error``, which the model is shown so that it can still answer."""
    from mcp.shared.exceptions import MCPError

    from modelyard.agents.outbound import CheckedBackend

    started = time.monotonic()
    size_in = len(arguments.encode())

    def outcome(output: str | None, error: JSON | None) -> ToolOutcome:
        size_out = len((output or orjson.dumps(error).decode()).encode())
        return ToolOutcome(output, error, time.monotonic() - started, size_in, size_out)

    try:
        parsed = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        return outcome(None, _execution_error("the arguments are not a JSON object"))
    backend = CheckedBackend(target.label)
    scrub = _Scrub(target)
    try:
        with anyio.fail_after(target.timeout_s):
            async with _session(target, backend) as client:
                result = await client.call_tool(name, parsed)
    except MCPError as exc:
        return outcome(None, {"type": "mcp_protocol_error", "code": exc.code,
                              "message": scrub(exc.error.message)})  # fmt: skip
    except Exception as exc:  # noqa: BLE001  # reported as the call's error, the model is told
        leaf = backend.refusal or _leaf(exc)
        if isinstance(leaf, MCPError):
            return outcome(None, {"type": "mcp_protocol_error", "code": leaf.code,
                                  "message": scrub(leaf.error.message)})  # fmt: skip
        text = leaf.message if isinstance(leaf, ModelyardError) else scrub(str(leaf))
        status = leaf.status if isinstance(leaf, ModelyardError) else 502
        message = f"{type(leaf).__name__}: {text}" if text else type(leaf).__name__
        return outcome(None, {"type": "http_error", "code": status, "message": message})
    text = _text_of(result.content, result.structured_content)
    if len(text.encode()) > max_bytes:
        text = text.encode()[:max_bytes].decode("utf-8", "ignore")
    if result.is_error:
        return outcome(None, _execution_error(text))
    return outcome(text, None)


def _execution_error(text: str) -> JSON:
    return {"type": "mcp_tool_execution_error", "content": [{"type": "text", "text": text}]}


def _text_of(content: list[Any], structured: Any) -> str:
    texts = [block.text for block in content if getattr(block, "type", None) == "text"]
    if texts:
        return "\n".join(texts)
    if structured is not None:
        return orjson.dumps(structured).decode()
    return orjson.dumps([block.model_dump(mode="json") for block in content]).decode()
