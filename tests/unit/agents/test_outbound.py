"""The outbound check of MCP servers named by a request: every resolved address is checked,
the connection goes to a checked address (no second resolution), and the refusal names the
label and the setting."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

import httpcore2
import pytest

from modelyard.agents.outbound import CheckedBackend, check_url, is_public, resolve_checked
from modelyard.core.errors import InvalidRequest, ToolServerError


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "::1",
     "fe80::1", "fc00::1", "::ffff:127.0.0.1", "0.0.0.0", "224.0.0.1", "100.64.0.1"],
)  # fmt: skip
def test_private_loopback_link_local_and_reserved_are_not_public(address: str):
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_global_addresses_are_public(address: str):
    assert is_public(ipaddress.ip_address(address))


def _resolver(monkeypatch: pytest.MonkeyPatch, answers: list[list[str]]) -> list[str]:
    """getaddrinfo answering each call with the next list of addresses; the calls made."""
    asked: list[str] = []

    async def getaddrinfo(self: Any, host: str, port: int, **_kw: Any) -> list[Any]:
        asked.append(host)
        found = answers[min(len(asked), len(answers)) - 1]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in found]

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", getaddrinfo)
    return asked


def test_one_private_address_among_public_ones_refuses(monkeypatch: pytest.MonkeyPatch):
    _resolver(monkeypatch, [["8.8.8.8", "10.0.0.7"]])
    with pytest.raises(ToolServerError) as caught:
        asyncio.run(resolve_checked("tools.example", 443, "search"))
    assert caught.value.status == 424 and "'search'" in caught.value.message
    assert "10.0.0.7" in caught.value.message and "allow_private_addresses" in caught.value.message


def test_literal_loopback_is_refused_without_resolving(monkeypatch: pytest.MonkeyPatch):
    asked = _resolver(monkeypatch, [["8.8.8.8"]])
    with pytest.raises(ToolServerError):
        asyncio.run(resolve_checked("[::1]", 80, "x"))
    assert asked == []


def test_the_connection_goes_to_the_checked_address_not_a_second_answer(
    monkeypatch: pytest.MonkeyPatch,
):
    # A rebinding resolver: public at the check, loopback on any later question.
    asked = _resolver(monkeypatch, [["93.184.216.34"], ["127.0.0.1"]])
    connected: list[str] = []

    async def connect_tcp(self: Any, host: str, port: int, *args: Any) -> str:
        connected.append(host)
        return "stream"

    backend = CheckedBackend("rebind")
    monkeypatch.setattr(type(backend._inner), "connect_tcp", connect_tcp)
    asyncio.run(backend.connect_tcp("rebind.example", 443))
    assert connected == ["93.184.216.34"] and asked == ["rebind.example"]


def test_a_refused_connection_is_kept_for_the_error(monkeypatch: pytest.MonkeyPatch):
    _resolver(monkeypatch, [["127.0.0.1"]])
    backend = CheckedBackend("calc")
    with pytest.raises(httpcore2.ConnectError):
        asyncio.run(backend.connect_tcp("localhost", 80))
    assert backend.refusal is not None and "'calc'" in backend.refusal.message


@pytest.mark.parametrize(
    "url", ["ftp://x.example/mcp", "http:///mcp", "http://user:pw@x.example/mcp", "x.example"]
)
def test_url_shape(url: str):
    with pytest.raises(InvalidRequest) as caught:
        check_url(url, "calc")
    assert "pw" not in caught.value.message
