"""The shape a tool server's URL from a request must have (no network, no HTTP client: the
config and request checks import this without the client ``agents.outbound`` builds on)."""

from __future__ import annotations

from urllib.parse import urlsplit

from modelyard.core.errors import InvalidRequest


def check_url(url: str, label: str) -> None:
    """The URL's shape: http(s), a host, no user:password (a 400 naming the label)."""
    parts = urlsplit(url)
    why = None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        why = "server_url must be an http:// or https:// URL with a host"
    elif "@" in parts.netloc:
        why = "server_url must not carry credentials; send them in headers"
    if why:
        raise InvalidRequest(f"tools: MCP server {label!r}: {why}", param="tools")
