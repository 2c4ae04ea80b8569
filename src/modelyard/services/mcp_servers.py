"""Which MCP server a request's ``mcp`` tool means, and whether it may be used.

A label the operator configured (``mcp_servers``) resolves to that server, which may be on
loopback or a private network and may carry secret headers; a request cannot redirect it
elsewhere. A ``server_url`` from a request is used only when ``mcp.allow_request_urls`` is on,
and its addresses are checked at connect unless ``mcp.allow_private_addresses`` is on. A
project listed in ``mcp.projects`` may use only the servers listed for it (labels or URL
prefixes). Refusals name the label and the setting, never a secret.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.agents.mcp_client import ServerTarget
from modelyard.agents.server_urls import check_url
from modelyard.config.mcp import McpConfig, McpServerConfig
from modelyard.core.errors import InvalidRequest, PermissionDenied
from modelyard.core.mcp import McpToolRequest


@dataclass(frozen=True, slots=True)
class ToolServer:
    """A request's MCP tool with the server it resolved to."""

    request: McpToolRequest
    target: ServerTarget

    @property
    def label(self) -> str:
        return self.request.label


def resolve_servers(
    configured: dict[str, McpServerConfig],
    policy: McpConfig,
    project_id: str | None,
    tools: tuple[McpToolRequest, ...],
) -> list[ToolServer]:
    """Each tool's server, or a 400/403 naming the first one that may not be used."""
    return [_resolve(configured, policy, project_id, tool) for tool in tools]


def _resolve(
    configured: dict[str, McpServerConfig],
    policy: McpConfig,
    project_id: str | None,
    tool: McpToolRequest,
) -> ToolServer:
    label = tool.label
    own = configured.get(label)
    if own is not None and (tool.url is None or tool.url == own.url):
        _project_may(policy, project_id, label, own.url, operator=True)
        return ToolServer(tool, _operator_target(label, own, tool))
    if tool.url is None:
        names = ", ".join(sorted(configured)) or "none are configured"
        raise InvalidRequest(
            f"tools: MCP server {label!r} is not configured on this gateway and no server_url "
            f"was given; configured servers: {names}",
            param="tools",
            code="mcp_server_unknown",
        )
    if not policy.allow_request_urls:
        raise InvalidRequest(
            f"tools: MCP server {label!r}: this gateway does not connect to server URLs given "
            "in a request (the operator's mcp.allow_request_urls setting is off); use the "
            "label of a configured server",
            param="tools",
            code="mcp_server_refused",
        )
    check_url(tool.url, label)
    _project_may(policy, project_id, label, tool.url, operator=False)
    target = ServerTarget(
        label,
        url=tool.url,
        headers=dict(tool.headers),
        checked=not policy.allow_private_addresses,
    )
    return ToolServer(tool, target)


def _operator_target(label: str, own: McpServerConfig, tool: McpToolRequest) -> ServerTarget:
    # The operator's headers win over the request's: a client cannot replace the server's
    # credentials, only add its own headers.
    headers = {**dict(tool.headers), **{k: v.reveal() for k, v in own.headers.items()}}
    return ServerTarget(
        label,
        url=own.url,
        headers=headers,
        command=own.command,
        args=tuple(own.args),
        env={k: v.reveal() for k, v in own.env.items()} or None,
        checked=False,
        timeout_s=own.timeout_s,
    )


def _project_may(
    policy: McpConfig, project_id: str | None, label: str, url: str | None, *, operator: bool
) -> None:
    """A label in the list allows the operator's server of that label only; a URL prefix
    allows any server whose URL starts with it."""
    allowed = policy.projects.get(project_id or "") if policy.projects else None
    if allowed is None:
        return
    for entry in allowed:
        if operator and entry == label:
            return
        if "://" in entry and url is not None and url.startswith(entry):
            return
    raise PermissionDenied(
        f"tools: MCP server {label!r} is not among the servers this project may use "
        "(the operator's mcp.projects list)",
        param="tools",
        code="mcp_server_not_allowed",
    )
