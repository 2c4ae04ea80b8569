"""The ``agents:`` section: named agents, each a deployment with instructions, tools and
defaults that a Responses request invokes by ``model: "agent:<name>"`` or an
``agent_reference``. The admin API validates an agent version with these same models."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

AGENT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
TOOL_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
MAX_TOOLS = 128


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FunctionToolConfig(_Strict):
    """A function the *client* runs: the model may call it, the response carries the call."""

    type: Literal["function"]
    name: str = Field(pattern=TOOL_NAME_PATTERN)
    description: str | None = Field(None, max_length=4096)
    parameters: dict[str, object] | None = None
    strict: bool | None = None


class McpToolFilter(_Strict):
    tool_names: list[str] | None = None
    read_only: bool | None = None


class McpApprovalFilter(_Strict):
    always: McpToolFilter | None = None
    never: McpToolFilter | None = None


class McpToolConfig(_Strict):
    """An MCP server's tools, run by the gateway (the Responses API's ``mcp`` tool). A
    ``server_label`` without ``server_url`` names a server of the ``mcp_servers`` section."""

    type: Literal["mcp"]
    server_label: str = Field(pattern=TOOL_NAME_PATTERN)
    server_url: str | None = Field(None, max_length=2048)
    server_description: str | None = Field(None, max_length=4096)
    headers: dict[str, str] | None = None
    allowed_tools: list[str] | McpToolFilter | None = None
    require_approval: Literal["always", "never"] | McpApprovalFilter | None = None


# Discriminated by ``type``: a mistake names the tool's own field (``tools[0].server_label``).
AgentTool = Annotated[FunctionToolConfig | McpToolConfig, Field(discriminator="type")]


class AgentTextConfig(_Strict):
    """The default ``text`` of the agent's responses (the Responses API's shape)."""

    format: dict[str, object] | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class AgentConfig(_Strict):
    """One version of an agent. Request input is appended to the instructions; request tools
    are added to the agent's; the defaults apply where the request leaves a field out."""

    deployment: str = Field(
        min_length=1, max_length=128, description="the deployment the agent runs on"
    )
    description: str | None = Field(None, max_length=512)
    instructions: str | None = Field(
        None, max_length=256_000, description="first; a request's own are appended after them"
    )
    tools: list[AgentTool] = Field(
        default_factory=list,
        max_length=MAX_TOOLS,
        description="function tools (the client runs them) and MCP tools (the gateway runs them)",
    )
    # Tool policy.
    tool_choice: Literal["auto", "required", "none"] | None = Field(
        None, description="default tool_choice"
    )
    parallel_tool_calls: bool | None = None
    request_tools: Literal["allow", "refuse"] = Field(
        "allow",
        description="whether a request may add tools of its own to the agent's ('refuse': 400)",
    )
    # Defaults.
    temperature: float | None = Field(None, ge=0, le=2, description="default temperature")
    max_output_tokens: int | None = Field(None, ge=16, description="default max_output_tokens")
    max_tool_calls: int | None = Field(None, ge=1, description="default max_tool_calls")
    text: AgentTextConfig | None = Field(None, description="default text (format, verbosity)")
