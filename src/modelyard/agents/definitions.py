"""What an agent reference in a Responses request names, and how an agent's definition
becomes the request the gateway runs.

A request names an agent in one of three ways:

- ``"model": "agent:<name>"``: the agent's live version;
- ``"model": "agent:<name>@<version>"``: that version (a pinned client, a canary);
- Azure AI Foundry's ``"agent": {"type": "agent_reference", "name": ..., "version": ...}``
  (also accepted under the key ``agent_reference``), ``version`` optional (the live one).

``expand`` turns the request into the one the agent stands for: the agent's deployment as
``model``; its instructions first, the request's appended after a blank line; its tools, then
the request's (a request tool whose name an agent tool already has is a 400, as is any request
tool when the agent's policy refuses them); its defaults where the request leaves a field out.
The request's input, ``previous_response_id``, ``conversation`` and the rest pass unchanged, so
an agent is invoked exactly as a model is, and MCP tools in its definition take the same path
as a request's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from modelyard.core.errors import InvalidRequest, clipped

PREFIX: Final = "agent:"
REFERENCE_KEYS: Final = ("agent", "agent_reference")
_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# The defaults an agent sets for the fields a request leaves out.
_DEFAULTS: Final = (
    "temperature", "max_output_tokens", "max_tool_calls", "tool_choice", "parallel_tool_calls",
    "text",
)  # fmt: skip
JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class AgentRef:
    """The agent a request names; ``version`` None: the live one."""

    name: str
    version: int | None
    param: str  # where the request named it, for errors


@dataclass(frozen=True, slots=True)
class AgentDef:
    """One version of an agent: ``spec`` is the agent's definition as JSON (the ``agents:``
    section's shape, checked when it was recorded)."""

    name: str
    version: int
    spec: JSON

    @property
    def deployment(self) -> str:
        return str(self.spec["deployment"])

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def response_field(self) -> JSON:
        """The ``agent`` field of the ``Response``: Azure AI Foundry's shape for the agent
        that made it (``version`` a string, as Foundry's)."""
        return {"type": "agent_id", "name": self.name, "version": str(self.version)}


def names_agent(body: JSON) -> bool:
    """Whether a request body names an agent at all (cheap: most bodies do not)."""
    model = body.get("model")
    return (isinstance(model, str) and model.startswith(PREFIX)) or any(
        key in body for key in REFERENCE_KEYS
    )


def reference_of(body: JSON) -> AgentRef:
    """The agent ``body`` names (``names_agent`` was true); a 400 naming the field when the
    reference is malformed or names an agent twice."""
    given = [key for key in REFERENCE_KEYS if key in body]
    model = body.get("model")
    by_model = isinstance(model, str) and model.startswith(PREFIX)
    if len(given) > 1 or (given and model is not None):
        where = given[-1] if len(given) > 1 else "model"
        raise _bad(where, "name the agent once: either model 'agent:<name>' or an agent reference")
    if by_model:
        return _from_model(str(model))
    key = given[0]
    ref = body[key]
    if not isinstance(ref, dict):
        raise _bad(key, "must be an object {type: agent_reference, name, version}")
    unknown = sorted(set(ref) - {"type", "name", "version"})
    if unknown:
        raise _bad(
            f"{key}.{clipped(unknown[0], 64)}", "unknown field; accepted: type, name, version"
        )
    if ref.get("type", "agent_reference") != "agent_reference":
        raise _bad(f"{key}.type", "must be 'agent_reference'")
    name = ref.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _bad(f"{key}.name", "must be an agent name (letters, digits, . _ -; up to 64)")
    return AgentRef(name, _version(ref.get("version"), f"{key}.version"), key)


def _from_model(model: str) -> AgentRef:
    name, _, version = model[len(PREFIX) :].partition("@")
    if not _NAME.match(name):
        raise _bad(
            "model", f"{clipped(model, 80)!r} names no agent; use 'agent:<name>[@<version>]'"
        )
    return AgentRef(name, _version(version or None, "model"), "model")


def _version(raw: object, param: str) -> int | None:
    """Versions are 1, 2, ...; Foundry sends them as strings ("1"), 'latest' means live."""
    if raw is None or raw == "latest":
        return None
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 1:
        return raw
    if isinstance(raw, str) and raw.isdigit() and 0 < len(raw) <= 9 and int(raw) >= 1:
        return int(raw)
    raise _bad(param, "an agent version is a positive integer (or 'latest')")


def expand(body: JSON, agent: AgentDef) -> JSON:
    """The request ``body`` with ``agent`` applied (a new dict; ``body`` is not changed)."""
    spec = agent.spec
    out = {k: v for k, v in body.items() if k not in REFERENCE_KEYS}
    out["model"] = agent.deployment
    instructions = spec.get("instructions")
    if instructions:
        own = body.get("instructions")
        if own is not None and not isinstance(own, str):
            raise _bad("instructions", "must be a string when calling an agent")
        out["instructions"] = f"{instructions}\n\n{own}" if own else instructions
    tools = list(spec.get("tools") or ())
    if body.get("tools"):
        tools += _request_tools(body["tools"], tools, agent)
    if tools:
        out["tools"] = tools
    for key in _DEFAULTS:
        if out.get(key) is None and spec.get(key) is not None:
            out[key] = spec[key]
    return out


def _request_tools(raw: object, own: list[JSON], agent: AgentDef) -> list[JSON]:
    if not isinstance(raw, list):
        raise _bad("tools", "must be an array")
    if raw and agent.spec.get("request_tools") == "refuse":
        raise _bad("tools", f"agent {agent.name!r} takes no tools from the request; remove them")
    taken = {_tool_key(t) for t in own} - {None}
    for i, tool in enumerate(raw):
        key = _tool_key(tool) if isinstance(tool, dict) else None
        if key is not None and key in taken:
            raise _bad(
                f"tools[{i}]", f"agent {agent.name!r} already has the tool {key[1]!r}; rename it"
            )
    return raw


def _tool_key(tool: JSON) -> tuple[str, str] | None:
    """What two tools must not share: a function's name, an MCP server's label."""
    if tool.get("type") == "function" and isinstance(tool.get("name"), str):
        return ("function", tool["name"])
    if tool.get("type") == "mcp" and isinstance(tool.get("server_label"), str):
        return ("mcp", tool["server_label"])
    return None


def _bad(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{param}: {message}", param=param, code="invalid_value")
