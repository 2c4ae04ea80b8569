"""Agents in the admin API: ``/admin/v1/agents``. Reads for any key; writes for operators.

Create an agent (its version 1) or a new version, list, get one with its versions, set the
live version, roll back, delete. The rules (versions appended, config agents vs API agents)
are ``services/agents.py``'s; ``AGENT_OPERATIONS`` also feeds the generated OpenAPI document.
"""

from __future__ import annotations

from modelyard.core.errors import NotFound
from modelyard.server.admin_http import Call
from modelyard.server.admin_openapi import Operation
from modelyard.services import agent_models as models
from modelyard.services.agents import AgentBook
from modelyard.services.tenancy import require_operator


def _book(call: Call) -> AgentBook:
    return call.state.agents


async def list_agents(call: Call) -> models.AgentList:
    return models.AgentList(data=[models.Agent.of(i) for i in await _book(call).list()])


async def create_agent(call: Call) -> models.AgentVersionShown:
    require_operator(call.principal)
    body = call.given(models.AgentCreate)
    return await _created(call, body.name, body.spec(), body.live)


async def create_version(call: Call) -> models.AgentVersionShown:
    require_operator(call.principal)
    name = call.given(models.AgentPath).name
    body = call.given(models.AgentDefinition)
    return await _created(call, name, body.spec(), body.live)


async def _created(
    call: Call, name: str, spec: dict[str, object], live: bool
) -> models.AgentVersionShown:
    book = _book(call)
    added = await book.create_version(name, spec, live=live)
    info = await book.get(name)
    return models.AgentVersionShown.of(added, info.live_version)


async def get_agent(call: Call) -> models.Agent:
    return models.Agent.of(await _book(call).get(call.given(models.AgentPath).name))


async def get_version(call: Call) -> models.AgentVersionShown:
    path = call.given(models.AgentVersionPath)
    info = await _book(call).get(path.name)
    found = next((v for v in info.versions if v.version == path.version), None)
    if found is None:
        raise NotFound(f"agent {path.name!r} has no version {path.version}", param="version")
    return models.AgentVersionShown.of(found, info.live_version)


async def set_live(call: Call) -> models.Agent:
    require_operator(call.principal)
    name = call.given(models.AgentPath).name
    info = await _book(call).set_live(name, call.given(models.LiveVersion).version)
    return models.Agent.of(info)


async def rollback(call: Call) -> models.Agent:
    require_operator(call.principal)
    name = call.given(models.AgentPath).name
    return models.Agent.of(await _book(call).rollback(name, call.given(models.Rollback).version))


async def delete_agent(call: Call) -> models.AgentDeleted:
    require_operator(call.principal)
    name = call.given(models.AgentPath).name
    await _book(call).delete(name)
    return models.AgentDeleted(name=name, deleted=True)


_ANY = (400, 401, 403, 503)
_AGENT = (200, models.Agent, "The agent with its versions")
_VERSION = (201, models.AgentVersionShown, "The version recorded")
AGENT_OPERATIONS = (
    Operation(
        "GET", "/agents", "Agents, each with its live version and versions", list_agents,
        answer=(200, models.AgentList, "Agents"), errors=(401, 503),
    ),
    Operation(
        "POST", "/agents", "Create an agent, or a new version of one (operator)", create_agent,
        answer=_VERSION, errors=(*_ANY, 409, 413), body=models.AgentCreate,
    ),
    Operation(
        "GET", "/agents/{name}", "One agent with its versions", get_agent,
        answer=_AGENT, errors=(*_ANY, 404), path_params=models.AgentPath,
    ),
    Operation(
        "DELETE", "/agents/{name}", "Delete an agent made through this API (operator)",
        delete_agent, answer=(200, models.AgentDeleted, "Deleted"), errors=(*_ANY, 404),
        path_params=models.AgentPath,
    ),
    Operation(
        "POST", "/agents/{name}/versions", "Record a new version of an agent (operator)",
        create_version, answer=_VERSION, errors=(*_ANY, 404, 409, 413),
        path_params=models.AgentPath, body=models.AgentDefinition,
    ),
    Operation(
        "GET", "/agents/{name}/versions/{version}", "One version of an agent", get_version,
        answer=(200, models.AgentVersionShown, "The version"), errors=(*_ANY, 404),
        path_params=models.AgentVersionPath,
    ),
    Operation(
        "POST", "/agents/{name}/live", "Set the live version (operator)", set_live,
        answer=_AGENT, errors=(*_ANY, 404), path_params=models.AgentPath,
        body=models.LiveVersion,
    ),
    Operation(
        "POST", "/agents/{name}/rollback",
        "Make an earlier version live: the given one, or the one below the live one (operator)",
        rollback, answer=_AGENT, errors=(*_ANY, 404), path_params=models.AgentPath,
        body=models.Rollback,
    ),
)  # fmt: skip
