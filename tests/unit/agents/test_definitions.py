"""How a request names an agent, and how the agent's definition becomes the request run."""

from __future__ import annotations

from typing import Any

import pytest

from modelyard.agents.definitions import AgentDef, AgentRef, expand, names_agent, reference_of
from modelyard.core.errors import InvalidRequest

AGENT = AgentDef(
    "calc",
    3,
    {
        "deployment": "toolbot",
        "instructions": "You add numbers.",
        "tools": [{"type": "mcp", "server_label": "calc", "require_approval": "never"}],
        "temperature": 0.1,
        "max_tool_calls": 4,
        "text": {"format": {"type": "text"}},
    },
)


@pytest.mark.parametrize(
    ("body", "ref"),
    [
        ({"model": "agent:calc"}, AgentRef("calc", None, "model")),
        ({"model": "agent:calc@2"}, AgentRef("calc", 2, "model")),
        ({"agent": {"type": "agent_reference", "name": "calc"}}, AgentRef("calc", None, "agent")),
        (
            {"agent_reference": {"type": "agent_reference", "name": "calc", "version": "7"}},
            AgentRef("calc", 7, "agent_reference"),
        ),
        ({"agent": {"name": "calc", "version": "latest"}}, AgentRef("calc", None, "agent")),
    ],
)
def test_the_ways_to_name_an_agent(body: dict[str, Any], ref: AgentRef):
    assert names_agent(body)
    assert reference_of(body) == ref


def test_a_plain_model_names_no_agent():
    assert not names_agent({"model": "gpt-4o", "input": "hi"})


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "agent:"}, "model"),
        ({"model": "agent:calc@0"}, "model"),
        ({"model": "agent:calc@x"}, "model"),
        ({"model": "gpt-4o", "agent": {"name": "calc"}}, "model"),
        ({"agent": {"name": "calc"}, "agent_reference": {"name": "calc"}}, "agent_reference"),
        ({"agent": "calc"}, "agent"),
        ({"agent": {"type": "agent_id", "name": "calc"}}, "agent.type"),
        ({"agent": {"name": "calc", "extra": 1}}, "agent.extra"),
        ({"agent": {"name": "../etc"}}, "agent.name"),
        ({"agent": {"name": "calc", "version": -1}}, "agent.version"),
    ],
)
def test_a_malformed_reference_is_a_400_naming_the_field(body: dict[str, Any], param: str):
    with pytest.raises(InvalidRequest) as caught:
        reference_of(body)
    assert caught.value.param == param


def test_the_agent_supplies_model_instructions_tools_and_defaults():
    body = {
        "model": "agent:calc",
        "input": "2+2?",
        "instructions": "Answer in French.",
        "tools": [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}],
        "temperature": 0.9,
    }
    out = expand(body, AGENT)
    assert out["model"] == "toolbot"
    assert out["instructions"] == "You add numbers.\n\nAnswer in French."
    assert [t.get("server_label") or t.get("name") for t in out["tools"]] == ["calc", "lookup"]
    assert out["temperature"] == 0.9  # the request's own value wins over the default
    assert out["max_tool_calls"] == 4 and out["text"] == {"format": {"type": "text"}}
    assert out["input"] == "2+2?"
    assert body["model"] == "agent:calc"  # the caller's body is left as it was


def test_the_reference_field_is_removed():
    out = expand({"agent": {"name": "calc"}, "input": "x"}, AGENT)
    assert "agent" not in out and out["model"] == "toolbot"


def test_a_request_tool_may_not_take_an_agent_tools_name():
    body = {"model": "agent:calc", "input": "x", "tools": [{"type": "mcp", "server_label": "calc"}]}
    with pytest.raises(InvalidRequest) as caught:
        expand(body, AGENT)
    assert caught.value.param == "tools[0]"


def test_an_agent_may_refuse_request_tools():
    agent = AgentDef("closed", 1, {"deployment": "d", "request_tools": "refuse"})
    body = {"model": "agent:closed", "input": "x", "tools": [{"type": "function", "name": "f"}]}
    with pytest.raises(InvalidRequest) as caught:
        expand(body, agent)
    assert caught.value.param == "tools"
    assert expand({"model": "agent:closed", "input": "x"}, agent)["model"] == "d"
