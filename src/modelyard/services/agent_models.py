"""The admin API's bodies for agents (``/admin/v1/agents``), shared by the CLI's ``--json``.

A version's definition is checked by the config's own model (``config.agents.AgentConfig``),
so an agent made through the API and one in ``modelyard.yaml`` accept exactly the same fields
and a mistake names the same path (``tools.0.server_label``).
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import Field

from modelyard.config.agents import AGENT_NAME_PATTERN
from modelyard.services.admin_models import _TIME, Query, Request, Response, stamp
from modelyard.services.agents import AgentInfo
from modelyard.store.agents import AgentVersion


class AgentDefinition(Request):
    """One version's definition: the ``agents:`` section's fields (see the configuration
    reference), plus whether it goes live at once."""

    deployment: str = Field(description="the deployment the agent runs on")
    description: str | None = None
    instructions: str | None = None
    tools: list[dict[str, Any]] = Field(
        default_factory=list, description="function tools and MCP tools, as in the config"
    )
    tool_choice: Literal["auto", "required", "none"] | None = None
    parallel_tool_calls: bool | None = None
    request_tools: Literal["allow", "refuse"] = "allow"
    temperature: float | None = None
    max_output_tokens: int | None = None
    max_tool_calls: int | None = None
    text: dict[str, Any] | None = None
    live: bool = Field(True, description="make this version live at once")

    def spec(self) -> dict[str, Any]:
        return self.model_dump(exclude={"live"}, exclude_unset=True)


class AgentCreate(AgentDefinition):
    """A new agent (or a new version of one, as ``POST /agents/{name}/versions``)."""

    name: str = Field(pattern=AGENT_NAME_PATTERN, description="the agent's name")

    def spec(self) -> dict[str, Any]:
        return self.model_dump(exclude={"live", "name"}, exclude_unset=True)


class LiveVersion(Request):
    version: int = Field(ge=1, description="the version to make live")


class Rollback(Request):
    version: int | None = Field(
        None, ge=1, description="the version to go back to (default: the one below the live one)"
    )


class AgentPath(Query):
    name: str = Field(pattern=AGENT_NAME_PATTERN, description="the agent's name")


class AgentVersionPath(Query):
    name: str = Field(pattern=AGENT_NAME_PATTERN, description="the agent's name")
    version: int = Field(ge=1, description="the version")


class AgentVersionShown(Response):
    object: Literal["agent.version"] = "agent.version"
    name: str
    version: int
    source: str = Field(description="config, api, or rollback")
    live: bool
    created_at: str = Field(json_schema_extra=_TIME)
    definition: dict[str, Any]

    @classmethod
    def of(cls, version: AgentVersion, live: int) -> AgentVersionShown:
        return cls(
            name=version.name,
            version=version.version,
            source=version.source,
            live=version.version == live,
            created_at=stamp(version.created_at) or "",
            definition=orjson.loads(version.spec),
        )


class Agent(Response):
    object: Literal["agent"] = "agent"
    name: str
    origin: str = Field(description="config (modelyard.yaml) or api")
    live_version: int
    latest_version: int
    deployment: str | None = Field(description="the live version's deployment")
    description: str | None
    versions: list[AgentVersionShown]

    @classmethod
    def of(cls, info: AgentInfo) -> Agent:
        live = info.live
        definition = orjson.loads(live.spec) if live is not None else {}
        return cls(
            name=info.name,
            origin=info.origin,
            live_version=info.live_version,
            latest_version=max((v.version for v in info.versions), default=0),
            deployment=definition.get("deployment"),
            description=definition.get("description"),
            versions=[AgentVersionShown.of(v, info.live_version) for v in info.versions],
        )


class AgentList(Response):
    object: Literal["list"] = "list"
    data: list[Agent]


class AgentDeleted(Response):
    object: Literal["agent.deleted"] = "agent.deleted"
    name: str
    deleted: bool
