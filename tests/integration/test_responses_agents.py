"""The OpenAI Agents SDK (tracing disabled) through the gateway's Responses API: a function
tool and a handoff on an Anthropic-backed deployment, memory in an ``OpenAIConversationsSession``,
and the embedded local model: a plain agent, and a handoff then a function tool, each call
written by the model itself (steered with ``tool_choice``, held to the tools' grammar)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import agents
import openai
import pytest
from agents import (
    Agent,
    ModelSettings,
    OpenAIConversationsSession,
    OpenAIResponsesModel,
    Runner,
    function_tool,
)

from tests.integration.server import RunningServer

agents.set_tracing_disabled(True)


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def _model(gateway: RunningServer, name: str) -> OpenAIResponsesModel:
    client = openai.AsyncOpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0)
    return OpenAIResponsesModel(model=name, openai_client=client)


def _agents(gateway: RunningServer, deployment: str) -> Agent[Any]:
    model = _model(gateway, deployment)
    forecaster = Agent(name="Forecaster", instructions="Report the weather.", model=model)
    return Agent(
        name="Triage",
        instructions="Look the weather up, then hand off to the forecaster.",
        tools=[get_weather],
        handoffs=[forecaster],
        model=model,
    )


def test_runner_run_with_a_tool_and_a_handoff(gateway: RunningServer, vendor_fakes: Any):
    result = asyncio.run(Runner.run(_agents(gateway, "m-anthropic-ok"), "weather in Paris?"))
    assert result.last_agent.name == "Forecaster"
    assert "sunny in Paris" in result.final_output
    kinds = [item.type for item in result.new_items]
    assert "tool_call_output_item" in kinds and "handoff_output_item" in kinds
    assert "sunny in Paris" in json.dumps(vendor_fakes["anthropic"].last_request.json)


def test_runner_run_streamed_with_a_tool_and_a_handoff(gateway: RunningServer):
    async def run() -> Any:
        streamed = Runner.run_streamed(_agents(gateway, "m-anthropic-ok"), "weather in Oslo?")
        kinds = [event.type async for event in streamed.stream_events()]
        return streamed, kinds

    streamed, kinds = asyncio.run(run())
    assert streamed.last_agent.name == "Forecaster"
    assert "sunny in Paris" in streamed.final_output  # the fake samples "Paris" for a city
    assert "raw_response_event" in kinds and "agent_updated_stream_event" in kinds


def test_conversations_session_keeps_memory(gateway: RunningServer, vendor_fakes: Any):
    async def two_runs() -> tuple[Any, Any]:
        client = openai.AsyncOpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0)
        session = OpenAIConversationsSession(openai_client=client)
        agent = Agent(name="Echo", model=_model(gateway, "m-anthropic-ok"))
        first = await Runner.run(agent, "MEMORY-MARKER-1203", session=session)
        second = await Runner.run(agent, "what did I say?", session=session)
        return first, second

    first, second = asyncio.run(two_runs())
    assert first.final_output == "echo: MEMORY-MARKER-1203"
    assert second.final_output == "echo: what did I say?"
    sent = json.dumps(vendor_fakes["anthropic"].last_request.json)
    assert "MEMORY-MARKER-1203" in sent and "echo: MEMORY-MARKER-1203" in sent


@pytest.mark.local_model
def test_local_model_plain_agent_and_session(gateway: RunningServer):
    async def two_runs() -> tuple[Any, Any, list[Any]]:
        client = openai.AsyncOpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0)
        session = OpenAIConversationsSession(openai_client=client)
        agent = Agent(name="Greeter", instructions="Greet briefly.", model=_model(gateway, "local"))
        first = await Runner.run(agent, "Hello!", session=session)
        second = await Runner.run(agent, "Hello again!", session=session)
        return first, second, list(await session.get_items())

    first, second, items = asyncio.run(two_runs())
    assert first.final_output.strip() and second.final_output.strip()
    assert len(items) == 4  # two user turns and two answers


def _local_agents(gateway: RunningServer) -> Agent[Any]:
    """Triage hands off to Forecaster, which calls get_weather; its output is the answer.

    The tiny model is steered: each agent's ``tool_choice`` names the one call it must make, and
    the Forecaster stops on its tool's result (``stop_on_first_tool``) rather than ask the model
    to phrase it. The calls, with their arguments, are still the model's own output.
    """
    model = _model(gateway, "local")
    forecaster = Agent(
        name="Forecaster",
        instructions="Look up the weather of the city the user names.",
        tools=[get_weather],
        model=model,
        model_settings=ModelSettings(tool_choice="get_weather"),
        tool_use_behavior="stop_on_first_tool",
    )
    return Agent(
        name="Triage",
        instructions="Hand weather questions off to the forecaster.",
        handoffs=[forecaster],
        model=model,
        model_settings=ModelSettings(tool_choice="transfer_to_forecaster"),
    )


@pytest.mark.local_model
def test_local_model_handoff_and_function_tool(gateway: RunningServer):
    result = asyncio.run(Runner.run(_local_agents(gateway), "weather in Paris?", max_turns=4))
    assert result.last_agent.name == "Forecaster"
    assert result.final_output.startswith("sunny in ")
    kinds = [item.type for item in result.new_items]
    assert kinds.index("handoff_output_item") < kinds.index("tool_call_output_item")
    call = next(item for item in result.new_items if item.type == "tool_call_item")
    arguments = json.loads(call.raw_item.arguments)  # type: ignore[union-attr]
    assert set(arguments) == {"city"} and isinstance(arguments["city"], str)


@pytest.mark.local_model
def test_local_model_handoff_and_function_tool_streamed(gateway: RunningServer):
    async def run() -> Any:
        streamed = Runner.run_streamed(_local_agents(gateway), "weather in Oslo?", max_turns=4)
        kinds = [event.type async for event in streamed.stream_events()]
        return streamed, kinds

    streamed, kinds = asyncio.run(run())
    assert streamed.last_agent.name == "Forecaster"
    assert streamed.final_output.startswith("sunny in ")
    assert "agent_updated_stream_event" in kinds and "run_item_stream_event" in kinds
