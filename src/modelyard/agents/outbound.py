"""Outbound connections to tool servers named by a request: checked before and at connect.

A URL from a request is refused unless it is ``http``/``https`` with a host and no
credentials. When private addresses are not allowed, the host is resolved and *every* address
it resolves to is checked (private, loopback, link-local, multicast, reserved, unspecified:
refused); the connection then goes to one of the addresses just checked, never to a second
resolution, so a DNS answer that changes between check and connect (rebinding) cannot move the
call onto an internal address. The check lives in the network backend of the HTTP client
(``CheckedBackend``), so it also applies to every later request of the session and to any
redirect the MCP SDK follows (same origin only).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable

import httpcore2
import httpx2
from httpcore2 import AsyncNetworkBackend, AsyncNetworkStream

from modelyard.agents.server_urls import check_url as check_url  # noqa: PLC0414 (re-exported)
from modelyard.core.errors import ToolServerError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def refused(label: str, why: str) -> ToolServerError:
    return ToolServerError(f"MCP server {label!r}: {why}", param="tools", code="mcp_server_refused")


def is_public(address: Address) -> bool:
    """Whether ``address`` is a global unicast address (what a request's URL may reach)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


async def resolve_checked(host: str, port: int, label: str) -> list[str]:
    """The host's addresses, all public, or a refusal naming the first one that is not."""
    try:
        literal: Address | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        found = [literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise ToolServerError(
                f"MCP server {label!r}: its host name does not resolve", code="mcp_server_error"
            ) from exc
        found = [ipaddress.ip_address(info[4][0]) for info in infos]
    for address in found:
        if not is_public(address):
            raise refused(
                label,
                f"server_url resolves to a private, loopback or link-local address ({address}); "
                "the operator's mcp.allow_private_addresses setting is off",
            )
    return [str(a) for a in dict.fromkeys(found)]


class CheckedBackend(AsyncNetworkBackend):
    """httpcore's network backend, connecting only to addresses it has just checked.
    ``refusal`` keeps the refusal, since the HTTP stack wraps what a backend raises."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.refusal: ToolServerError | None = None
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  # httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> AsyncNetworkStream:
        try:
            addresses = await resolve_checked(host, port, self.label)
        except ToolServerError as err:
            self.refusal = err
            raise httpcore2.ConnectError(err.message) from err
        # TLS still verifies the certificate against the URL's host: httpcore passes the
        # request's host as the server name, not the address connected to.
        return await self._inner.connect_tcp(
            addresses[0], port, timeout, local_address, socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109  # httpcore's interface
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> AsyncNetworkStream:
        raise httpcore2.ConnectError("unix sockets are not reachable through a request's URL")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class CheckedTransport(httpx2.AsyncHTTPTransport):
    """httpx's transport on a ``CheckedBackend``. httpx takes no backend argument, so the pool
    it built is replaced by one with our backend (no proxy: a proxy would resolve the host
    itself, after our check)."""

    def __init__(self, backend: CheckedBackend) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=httpx2.create_ssl_context(trust_env=False),
            max_connections=8,
            network_backend=backend,
        )
