"""The ``mcp_servers`` and ``mcp`` sections: tool servers the gateway runs tools on.

``mcp_servers`` names the operator's MCP servers; a request's ``{"type": "mcp",
"server_label": "calc"}`` with no ``server_url`` resolves to the one named ``calc``. A server
is reached over streamable HTTP (``url``) or, only when configured here, launched as a stdio
subprocess (``command``/``args``). Header values and stdio environment values may be secrets
(``env::NAME``, ``file::PATH``): they are sent to the server and never shown.

``mcp`` is the outbound policy for everything else: whether a request may name a server by
URL at all, whether private, loopback and link-local addresses may be reached (the operator's
own servers always may), which servers each project may use, and the loop's bounds.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from modelyard.config.secrets import Secret, resolve_secret

LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


def _secrets(value: Any) -> dict[str, Secret]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("must be a mapping of names to values, env::NAME or file::PATH")
    out: dict[str, Secret] = {}
    for key, item in value.items():
        if isinstance(item, Secret):
            out[str(key)] = item
        elif isinstance(item, str):
            out[str(key)] = resolve_secret(item)
        else:
            raise ValueError(f"{key}: must be a string: a value, env::NAME or file::PATH")
    return out


class McpServerConfig(_Strict):
    """One operator-configured MCP server: ``url`` (streamable HTTP) or ``command`` (stdio)."""

    url: str | None = Field(None, description="streamable HTTP endpoint, e.g. http://host/mcp")
    headers: dict[str, Secret] = Field(
        default_factory=dict, description="sent on every request; values may be secrets"
    )
    command: str | None = Field(None, description="a stdio server: the program to launch")
    args: list[str] = Field(default_factory=list, description="the stdio program's arguments")
    env: dict[str, Secret] = Field(
        default_factory=dict, description="the stdio program's environment; values may be secrets"
    )
    description: str | None = Field(None, max_length=2000)
    timeout_s: float = Field(30.0, gt=0, le=600, description="per list or call")

    @field_validator("headers", "env", mode="before")
    @classmethod
    def _resolve(cls, value: Any) -> dict[str, Secret]:
        return _secrets(value)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if "@" in parts.netloc:
            raise ValueError("must not carry credentials; put them in headers")
        return value

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerConfig:
        if (self.url is None) == (self.command is None):
            raise ValueError("set exactly one of url (streamable HTTP) or command (stdio)")
        return self


class McpConfig(_Strict):
    """The outbound policy for MCP servers and the tool loop's bounds."""

    allow_request_urls: bool = Field(
        False,
        description="whether a request may name an MCP server by server_url (else only the "
        "servers of mcp_servers, by label)",
    )
    allow_private_addresses: bool = Field(
        False,
        description="whether a server_url from a request may resolve to a private, loopback "
        "or link-local address (operator-configured servers always may)",
    )
    projects: dict[str, list[str]] = Field(
        default_factory=dict,
        description="per project id: the MCP servers its keys may use, as labels of "
        "mcp_servers or URL prefixes; a project not listed may use any server",
    )
    max_iterations: int = Field(
        16, ge=1, le=256, description="model calls per response at most (the hard cap)"
    )
    max_output_bytes: int = Field(
        1_000_000, ge=1024, description="bytes of one tool result at most (longer: cut)"
    )


__all__ = ["LABEL_PATTERN", "McpConfig", "McpServerConfig"]
