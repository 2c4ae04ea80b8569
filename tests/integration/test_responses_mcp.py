"""MCP tools the gateway runs, through the official ``openai`` SDK and the OpenAI Agents SDK:
a real MCP server (the ``mcp`` SDK's, on a loopback port, tools ``add`` and ``fail``), behind
an OpenAI-format and an Anthropic-format deployment. List → call → answer, approvals both ways,
``allowed_tools``, a failing tool, an unreachable server, request URLs refused by default and
loopback refused unless allowed, the streamed events, secrets never echoed."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import agents
import anthropic
import httpx2 as httpx
import openai
import pytest
from agents import Agent, HostedMCPTool, OpenAIResponsesModel, Runner

from modelyard.services.tenancy import KeySpec, TenancyAdmin
from modelyard.store import database_url, open_store
from modelyard.store.usage import UsageLedger
from modelyard.tenancy.keys import Principal
from modelyard.tenancy.model import Limits, UsageFilter
from tests.fakes.mcp_calc import CalcServer, serve_calc
from tests.integration.conftest import UPSTREAM_KEY
from tests.integration.responses_spec import spec_errors
from tests.integration.server import RunningServer, free_port, run_server
from tests.otlp_receiver import attributes as otlp_attributes
from tests.otlp_receiver import otlp_receiver
from tests.waiting import wait_until

agents.set_tracing_disabled(True)
OPERATOR = Principal("test-operator", role="operator")
ADMIN = "operator-secret-mcp-tests"
EXAMPLE = Path(__file__).parents[2] / "examples" / "mcp_calc_server.py"
TOKEN = "calc-token-5531"  # the calculator's bearer token: must reach it, never a client


@pytest.fixture(scope="module")
def calc() -> Iterator[CalcServer]:
    with serve_calc(token=TOKEN) as server:
        yield server


def _config(calc: CalcServer, fake_upstream: Any, vendors: Any, **mcp: Any) -> dict[str, Any]:
    return {
        "local": {"enabled": False},
        "providers": {
            "oa": {
                "type": "openai_compatible",
                "base_url": fake_upstream.base_url,
                "api_key": "env::K",
            },
            "an": {
                "type": "anthropic",
                "base_url": vendors["anthropic"].base_url,
                "api_key": "env::K",
            },
        },
        "deployments": {
            "oa": {"targets": [{"provider": "oa", "model": "model-x"}]},
            "an": {"targets": [{"provider": "an", "model": "model-x"}]},
            "guarded": {"targets": [{"provider": "oa", "model": "model-x"}]},
        },
        # The model's tool calls on "guarded" are screened: an argument named b is refused.
        "guardrails": {
            "policies": {
                "no_b": {
                    "guards": [
                        {"kind": "deny", "phases": ["tool_input"], "settings": {"words": ["b"]}}
                    ]
                }
            },
            "deployments": {"guarded": "no_b"},
        },
        "mcp_servers": {
            "calc": {"url": calc.url, "headers": {"Authorization": "env::CALC_AUTH"}},
            "dead": {"url": f"http://127.0.0.1:{free_port()}/mcp"},
            # A stdio server: launched by the gateway, only because the operator configured it.
            "local_calc": {"command": sys.executable, "args": [str(EXAMPLE), "--stdio"]},
        },
        "mcp": mcp,
    }


def _gateway(tmp: Path, config: dict[str, Any], **env: str) -> Any:
    env = {"K": UPSTREAM_KEY, "CALC_AUTH": f"Bearer {TOKEN}", **env}
    return run_server(tmp, config, env=env)


@pytest.fixture(scope="module")
def gw(calc, fake_upstream, vendor_fakes, tmp_path_factory) -> Iterator[RunningServer]:
    config = _config(calc, fake_upstream, vendor_fakes)
    with _gateway(tmp_path_factory.mktemp("mcp"), config) as server:
        yield server


def _client(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=60)


def _calc(**extra: Any) -> Any:
    return {"type": "mcp", "server_label": "calc", **extra}


def _types(response: Any) -> list[str]:
    return [item.type for item in response.output]


def _body(client: openai.OpenAI, **kwargs: Any) -> dict[str, Any]:
    raw = client.responses.with_raw_response.create(**kwargs)
    return raw.http_response.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("model", ["oa", "an"])
def test_list_call_answer(gw: RunningServer, calc: CalcServer, model: str):
    calc.calls.clear()
    tool = _calc(require_approval="never", allowed_tools=["add"])
    body = _body(_client(gw), model=model, input="add two numbers", tools=[tool])
    assert spec_errors("Response", body) == []
    kinds = [item["type"] for item in body["output"]]
    assert kinds == ["mcp_list_tools", "mcp_call", "message"]
    listing, call, message = body["output"]
    assert {t["name"] for t in listing["tools"]} == {"add", "fail"}
    assert listing["server_label"] == "calc" and listing["error"] is None
    assert [name for name, _ in calc.calls] == ["add"]
    args = calc.calls[0][1]
    expected = str(int(args["a"]) + int(args["b"]))  # type: ignore[call-overload]
    assert call["name"] == "add" and call["status"] == "completed"
    assert call["output"] == expected and json.loads(call["arguments"]) == args
    assert message["content"][0]["text"] == f"tool said: {expected}"
    assert body["status"] == "completed"
    assert TOKEN not in json.dumps(body)
    log = gw.log()  # the tool server's address and secrets stay out of the log
    assert TOKEN not in log and calc.url not in log and "mcp_call" not in log


def test_a_guarded_tool_call_is_blocked_before_it_runs(gw: RunningServer, calc: CalcServer):
    calc.calls.clear()
    tool = _calc(require_approval="never", allowed_tools=["add"])
    response = _client(gw).responses.create(model="guarded", input="add", tools=[tool])
    assert response.status == "incomplete" and calc.calls == []
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "content_filter"
    assert _types(response) == ["mcp_list_tools"]


def test_a_configured_stdio_server(gw: RunningServer):
    tool = {"type": "mcp", "server_label": "local_calc", "require_approval": "never",
            "allowed_tools": ["add"]}  # fmt: skip
    response = _client(gw).responses.create(model="oa", input="add", tools=[tool])  # type: ignore[list-item]
    assert _types(response) == ["mcp_list_tools", "mcp_call", "message"]
    call = response.output[1]
    assert call.type == "mcp_call" and call.status == "completed"
    args = json.loads(call.arguments)
    assert call.output == str(args["a"] + args["b"])


def test_failing_tool_is_a_failed_call_and_the_model_still_answers(gw: RunningServer):
    tool = _calc(require_approval="never", allowed_tools=["fail"])
    response = _client(gw).responses.create(model="oa", input="try it", tools=[tool])
    assert _types(response) == ["mcp_list_tools", "mcp_call", "message"]
    call = response.output[1]
    assert call.type == "mcp_call" and call.status == "failed" and call.output is None
    error = json.dumps(call.error.model_dump() if call.error else None)
    assert "the fail tool failed" in error and "mcp_tool_execution_error" in error
    assert response.output_text.startswith("tool said: Error: the tool failed")
    assert response.status == "completed"


def test_approval_then_approve_runs_the_call_without_listing_again(
    gw: RunningServer, calc: CalcServer
):
    client = _client(gw)
    calc.calls.clear()
    tool = _calc(allowed_tools=["add"])  # require_approval defaults to always
    first = client.responses.create(model="oa", input="add please", tools=[tool])
    assert _types(first) == ["mcp_list_tools", "mcp_approval_request"]
    assert calc.calls == []
    asked = first.output[1]
    assert asked.type == "mcp_approval_request" and asked.name == "add"
    second = client.responses.create(
        model="oa",
        previous_response_id=first.id,
        tools=[tool],
        input=[{"type": "mcp_approval_response", "approval_request_id": asked.id, "approve": True}],
    )
    assert _types(second) == ["mcp_call", "message"]  # the listing is the chain's
    call = second.output[0]
    assert call.type == "mcp_call" and call.approval_request_id == asked.id
    assert [name for name, _ in calc.calls] == ["add"]
    assert second.output_text == f"tool said: {call.output}"
    # Stored as served: retrieved whole, its input the approval answer.
    assert [i.type for i in client.responses.retrieve(second.id).output] == _types(second)
    listed = client.responses.input_items.list(second.id).data
    assert [i.type for i in listed] == ["mcp_approval_response"]


def test_approval_refused_tells_the_model(gw: RunningServer, calc: CalcServer):
    client = _client(gw)
    calc.calls.clear()
    tool = _calc(require_approval={"always": {"tool_names": ["add"]}}, allowed_tools=["add"])
    first = client.responses.create(model="an", input="add please", tools=[tool])
    asked = first.output[-1]
    assert asked.type == "mcp_approval_request"
    second = client.responses.create(
        model="an",
        previous_response_id=first.id,
        tools=[tool],
        input=[
            {
                "type": "mcp_approval_response",
                "approval_request_id": asked.id,
                "approve": False,
                "reason": "not today",
            }
        ],
    )
    assert calc.calls == []
    assert _types(second) == ["message"]
    assert "refused" in second.output_text and "not today" in second.output_text


def test_unreachable_server_and_empty_tool_list_are_errors(gw: RunningServer):
    client = _client(gw)
    with pytest.raises(openai.APIStatusError) as caught:
        client.responses.create(
            model="oa", input="x", tools=[{"type": "mcp", "server_label": "dead"}]
        )
    assert caught.value.status_code == 424 and "'dead'" in caught.value.message
    with pytest.raises(openai.APIStatusError) as caught:
        client.responses.create(model="oa", input="x", tools=[_calc(allowed_tools=["nope"])])
    assert caught.value.status_code == 424 and "'calc'" in caught.value.message
    assert "allowed_tools" in caught.value.message


def test_request_urls_are_refused_by_default(gw: RunningServer, calc: CalcServer):
    tool = {"type": "mcp", "server_label": "mine", "server_url": calc.url}
    with pytest.raises(openai.BadRequestError) as caught:
        _client(gw).responses.create(model="oa", input="x", tools=[tool])  # type: ignore[list-item]
    assert "mcp.allow_request_urls" in caught.value.message


def test_streamed_events(gw: RunningServer):
    tool = _calc(require_approval="never", allowed_tools=["add"])
    with _client(gw).responses.stream(model="oa", input="add", tools=[tool]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds: list[str] = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    order = [
        "response.mcp_list_tools.in_progress", "response.mcp_list_tools.completed",
        "response.mcp_call.in_progress", "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done", "response.mcp_call.completed",
        "response.output_text.delta", "response.completed",
    ]  # fmt: skip
    positions = [kinds.index(kind) for kind in order]
    assert positions == sorted(positions)
    numbers = [e.sequence_number for e in events]
    assert numbers == list(range(len(events)))
    assert [i.type for i in final.output] == ["mcp_list_tools", "mcp_call", "message"]
    assert final.output_text.startswith("tool said: ")


def test_streamed_unreachable_server_fails_naming_it(gw: RunningServer):
    tool = {"type": "mcp", "server_label": "dead", "require_approval": "never"}
    with _client(gw).responses.stream(model="oa", input="x", tools=[tool]) as stream:  # type: ignore[list-item]
        kinds = [e.type for e in stream]
    assert "response.mcp_list_tools.failed" in kinds and kinds[-1] == "response.failed"


def test_agents_sdk_hosted_mcp_tool(gw: RunningServer, calc: CalcServer):
    client = openai.AsyncOpenAI(base_url=gw.base_url, api_key="unused", max_retries=0)
    tool = HostedMCPTool(
        tool_config={
            "type": "mcp",
            "server_label": "calc",
            "require_approval": "never",
            "allowed_tools": ["add"],
        }
    )
    agent = Agent(
        name="Calc",
        instructions="Use the calculator.",
        tools=[tool],
        model=OpenAIResponsesModel(model="oa", openai_client=client),
    )
    calc.calls.clear()
    result = asyncio.run(Runner.run(agent, "what is a plus b?"))
    assert str(result.final_output).startswith("tool said: ")
    assert [name for name, _ in calc.calls] == ["add"]
    kinds = [item.type for item in result.new_items]
    assert "mcp_list_tools_item" in kinds and "tool_call_item" in kinds


@pytest.fixture(scope="module")
def open_gw(calc, fake_upstream, vendor_fakes, tmp_path_factory) -> Iterator[RunningServer]:
    """Request URLs allowed, private addresses not (the setting a public gateway would use)."""
    config = _config(calc, fake_upstream, vendor_fakes, allow_request_urls=True)
    with _gateway(tmp_path_factory.mktemp("mcp-open"), config) as server:
        yield server


def test_loopback_url_refused_unless_allowed(open_gw: RunningServer, calc, fake_upstream,
                                             vendor_fakes, tmp_path):  # fmt: skip
    tool = {
        "type": "mcp",
        "server_label": "mine",
        "server_url": calc.url,
        "headers": {"Authorization": f"Bearer {TOKEN}"},
        "require_approval": "never",
    }
    with pytest.raises(openai.APIStatusError) as caught:
        _client(open_gw).responses.create(model="oa", input="x", tools=[tool])  # type: ignore[list-item]
    assert caught.value.status_code == 424
    assert "loopback" in caught.value.message and "allow_private_addresses" in caught.value.message
    assert calc.refused == [] or all(p != "/mcp" for p in calc.refused)
    config = _config(calc, fake_upstream, vendor_fakes, allow_request_urls=True,
                     allow_private_addresses=True)  # fmt: skip
    with _gateway(tmp_path, config) as allowed:
        body = _body(_client(allowed), model="oa", input="x", tools=[tool])
    assert [item["type"] for item in body["output"]][-2:] == ["mcp_call", "message"]
    assert body["output"][1]["status"] == "completed"
    assert TOKEN not in json.dumps(body)  # the client's header value is not echoed back
    assert body["tools"][0]["headers"] == {"Authorization": "<redacted>"}


async def _seed_key(url: str, rpm: int) -> str:
    store = await open_store(url)
    admin = TenancyAdmin(store)
    try:
        await admin.create_project(OPERATOR, "team-tools", None, Limits())
        spec = KeySpec("team-tools", limits=Limits(rpm=rpm))
        _stored, fresh = await admin.create_key(OPERATOR, spec)
        return fresh.secret
    finally:
        await store.aclose()


async def _ledger(url: str) -> list[Any]:
    store = await open_store(url)
    try:
        async with store.transaction() as session:
            return await UsageLedger(session).records(UsageFilter(project_id="team-tools"))
    finally:
        await store.aclose()


def test_ledger_steps_equal_what_was_served_and_count_against_rpm(
    calc, fake_upstream, vendor_fakes, tmp_path
):
    (tmp_path / "data").mkdir()
    url = database_url(None, tmp_path / "data")
    key = asyncio.run(_seed_key(url, rpm=3))
    config = _config(calc, fake_upstream, vendor_fakes)
    with _gateway(tmp_path, config, MODELYARD_ADMIN_KEY=ADMIN) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=0, timeout=60)
        tool = _calc(require_approval="never", allowed_tools=["add"])
        raw = client.responses.with_raw_response.create(model="oa", input="add", tools=[tool])
        response = raw.parse()
        rid = raw.headers["x-request-id"]
        # Two model calls and one tool step: the key's three requests of this minute.
        with pytest.raises(openai.RateLimitError):
            client.responses.create(model="oa", input="one more")

        def rows() -> list[Any] | None:
            found = [r for r in asyncio.run(_ledger(url)) if r.parent_id == response.id]
            return found if len(found) == 3 else None

        steps = sorted(wait_until(rows, "three ledger rows"), key=lambda r: r.request_id)
        tree = httpx.get(
            f"{server.url}/admin/v1/usage/steps/{response.id}",
            headers={"authorization": f"Bearer {ADMIN}"},
            timeout=30,
        )
    assert tree.status_code == 200, tree.text
    shown = tree.json()
    assert (shown["model_calls"], shown["tool_calls"]) == (2, 1)
    assert [s["kind"] for s in shown["steps"]] == ["model", "tool", "model"]
    assert shown["steps"][1]["model"] == "add" and shown["steps"][1]["provider"] == "mcp:calc"
    # The tool step's sizes are those of the mcp_call item as served: its arguments, its output.
    call = response.output[1]
    assert call.type == "mcp_call" and call.status == "completed" and call.output
    sizes = (len(call.arguments.encode()), len(call.output.encode()))
    assert sizes[0] > 2 and sizes[1] > 0  # real arguments ({"a": ..}) and a real sum
    shown_sizes = [(s["kind"], s["bytes_in"], s["bytes_out"]) for s in shown["steps"]]
    assert shown_sizes == [("model", None, None), ("tool", *sizes), ("model", None, None)]
    cli = subprocess.run(
        [sys.executable, "-m", "modelyard.cli.main", "usage", "--steps", response.id,
         "--config", str(tmp_path / "modelyard.yaml")],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "MODELYARD_DATA_DIR": str(tmp_path / "data"),
             "K": UPSTREAM_KEY, "CALC_AUTH": "x"},
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert "2 model call(s), 1 tool call(s)" in cli.stdout
    assert f"tool  calc/add  {sizes[0]} B in / {sizes[1]} B out  200" in cli.stdout
    assert [r.request_id for r in steps] == [rid, f"{rid}.1", f"{rid}.t1"]
    first, second, tool_row = steps
    assert first.endpoint == second.endpoint == "/v1/responses"
    assert tool_row.endpoint == "mcp_call" and tool_row.provider == "mcp:calc"
    assert tool_row.model == "add" and tool_row.status == 200 and tool_row.latency_ms > 0
    assert {r.project_id for r in steps} == {"team-tools"}
    assert len({r.key_id for r in steps}) == 1 and first.key_id is not None
    assert response.usage is not None
    assert first.input_tokens + second.input_tokens == response.usage.input_tokens
    assert first.output_tokens + second.output_tokens == response.usage.output_tokens
    assert (tool_row.input_tokens, tool_row.output_tokens) == (0, 0)
    assert (tool_row.bytes_in, tool_row.bytes_out) == sizes
    assert (first.bytes_in, first.bytes_out, second.bytes_in, second.bytes_out) == (None,) * 4


def _anthropic(server: RunningServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0, timeout=60)


@pytest.mark.parametrize("model", ["oa", "an"])
def test_anthropic_connector_runs_the_tools_on_any_deployment(
    gw: RunningServer, calc: CalcServer, model: str
):
    calc.calls.clear()
    message = _anthropic(gw).beta.messages.create(
        model=model,
        max_tokens=200,
        messages=[{"role": "user", "content": "add two numbers"}],
        mcp_servers=[{"type": "url", "url": calc.url, "name": "calc"}],
        tools=[
            {
                "type": "mcp_toolset",
                "mcp_server_name": "calc",
                "configs": {"fail": {"enabled": False}},
            }
        ],
        betas=["mcp-client-2025-11-20"],
    )
    kinds = [block.type for block in message.content]
    assert kinds == ["mcp_tool_use", "mcp_tool_result", "text"]
    use, result, text = message.content
    assert use.type == "mcp_tool_use" and use.name == "add" and use.server_name == "calc"
    assert result.type == "mcp_tool_result" and not result.is_error
    assert [name for name, _ in calc.calls] == ["add"] and calc.calls[0][1] == use.input
    assert text.type == "text" and text.text.startswith("tool said: ")
    assert message.stop_reason == "end_turn"
    # The conversation goes on with the connector's blocks in the assistant turn.
    follow = _anthropic(gw).beta.messages.create(
        model=model,
        max_tokens=200,
        messages=[
            {"role": "user", "content": "add two numbers"},
            # The SDK's own blocks, resent as they came (as a client's history would).
            {"role": "assistant", "content": [b.model_dump() for b in message.content]},  # type: ignore[misc, list-item]
            {"role": "user", "content": "thanks"},
        ],
        mcp_servers=[
            {
                "type": "url",
                "url": calc.url,
                "name": "calc",
                "tool_configuration": {"allowed_tools": ["add"]},
            }
        ],
        betas=["mcp-client-2025-04-04"],
    )
    assert follow.content[-1].type == "text"


def test_anthropic_connector_to_another_url_is_refused_by_default(gw: RunningServer):
    with pytest.raises(anthropic.BadRequestError) as caught:
        _anthropic(gw).beta.messages.create(
            model="oa",
            max_tokens=50,
            messages=[{"role": "user", "content": "x"}],
            mcp_servers=[{"type": "url", "url": "https://tools.example/mcp", "name": "ext"}],
            betas=["mcp-client-2025-04-04"],
        )
    assert "mcp.allow_request_urls" in caught.value.message


@pytest.mark.local_model
def test_embedded_local_model_calls_the_tool(calc, fake_upstream, vendor_fakes, tmp_path):
    """The embedded model writes the call itself (held to the tool's grammar, steered by the
    spec's ``tool_choice`` for MCP); ``max_tool_calls`` then leaves it to answer. Greedy: a
    sampled call can run past ``max_output_tokens`` inside its JSON (a long number), and a
    cut-off call is kept as text (``local/tools.py`` ``parse``), which failed a CI run."""
    config = _config(calc, fake_upstream, vendor_fakes)
    config.pop("local")
    calc.calls.clear()
    with _gateway(tmp_path, config) as server:
        response = _client(server).responses.create(
            model="local",
            input="Add 2 and 40 with the calculator.",
            tools=[_calc(require_approval="never", allowed_tools=["add"])],
            tool_choice={"type": "mcp", "server_label": "calc", "name": "add"},
            max_tool_calls=1,
            max_output_tokens=32,
            temperature=0,
        )
    kinds = _types(response)
    assert kinds[:2] == ["mcp_list_tools", "mcp_call"] and kinds[-1] == "message"
    call = response.output[1]
    assert call.type == "mcp_call" and call.status == "completed"
    args = json.loads(call.arguments)
    assert calc.calls == [("add", args)] and call.output == str(args["a"] + args["b"])


def test_each_tool_execution_is_an_execute_tool_span(calc, fake_upstream, vendor_fakes, tmp_path):
    with otlp_receiver("http") as receiver:
        config = _config(calc, fake_upstream, vendor_fakes)
        config["observability"] = {
            "tracing": {"enabled": True, "exporter": "otlp_http", "endpoint": receiver.endpoint}
        }
        with _gateway(tmp_path, config) as server:
            tool = _calc(require_approval="never", allowed_tools=["add"])
            _client(server).responses.create(model="oa", input="add", tools=[tool])
            spans = receiver.wait_for_spans(4)  # the server span, two model calls, one tool
    by_name = {s.name: s for s in spans}
    tool_span = by_name["execute_tool add"]
    assert tool_span.parent_span_id == by_name["POST /v1/responses"].span_id
    found = otlp_attributes(tool_span)
    assert found["gen_ai.operation.name"] == "execute_tool"
    assert found["gen_ai.tool.name"] == "add" and found["gen_ai.tool.call.id"]
    assert found["modelyard.mcp.server_label"] == "calc"
    assert TOKEN not in json.dumps(found)


_EVENT_SCHEMAS = {
    "response.output_item.added": "ResponseOutputItemAddedEvent",
    "response.output_item.done": "ResponseOutputItemDoneEvent",
    "response.mcp_list_tools.in_progress": "ResponseMCPListToolsInProgressEvent",
    "response.mcp_list_tools.completed": "ResponseMCPListToolsCompletedEvent",
    "response.mcp_list_tools.failed": "ResponseMCPListToolsFailedEvent",
    "response.mcp_call.in_progress": "ResponseMCPCallInProgressEvent",
    "response.mcp_call.completed": "ResponseMCPCallCompletedEvent",
    "response.mcp_call.failed": "ResponseMCPCallFailedEvent",
    "response.mcp_call_arguments.delta": "ResponseMCPCallArgumentsDeltaEvent",
    "response.mcp_call_arguments.done": "ResponseMCPCallArgumentsDoneEvent",
    "response.completed": "ResponseCompletedEvent",
    "response.failed": "ResponseFailedEvent",
}


@pytest.mark.parametrize("allowed", [["add"], ["fail"]])
def test_streamed_mcp_events_match_the_spec(gw: RunningServer, allowed: list[str]):
    tool = _calc(require_approval="never", allowed_tools=allowed)
    body = {"model": "oa", "input": "go", "tools": [tool], "stream": True}
    raw = httpx.post(f"{gw.base_url}/responses", json=body, timeout=60)
    assert raw.status_code == 200
    events = [json.loads(line[6:]) for line in raw.text.splitlines() if line.startswith("data: ")]
    checked = 0
    for event in events:
        name = _EVENT_SCHEMAS.get(event["type"])
        if name is not None:
            assert spec_errors(name, event) == [], event["type"]
            checked += 1
    kinds = [e["type"] for e in events]
    ending = "completed" if allowed == ["add"] else "failed"
    assert f"response.mcp_call.{ending}" in kinds and kinds[-1] == "response.completed"
    assert checked >= 10
    ids = {e["item_id"] for e in events if e["type"].startswith("response.mcp_call")}
    assert len(ids) == 1  # every event of the call names the same item


def test_anthropic_connector_streamed(gw: RunningServer, calc: CalcServer):
    calc.calls.clear()
    with _anthropic(gw).beta.messages.stream(
        model="an",
        max_tokens=200,
        messages=[{"role": "user", "content": "add two numbers"}],
        mcp_servers=[{"type": "url", "url": calc.url, "name": "calc"}],
        tools=[{"type": "mcp_toolset", "mcp_server_name": "calc",
                "default_config": {"enabled": False}, "configs": {"add": {"enabled": True}}}],
        betas=["mcp-client-2025-11-20"],
    ) as stream:  # fmt: skip
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert [b.type for b in final.content] == ["mcp_tool_use", "mcp_tool_result", "text"]
    use = final.content[0]
    assert use.type == "mcp_tool_use" and use.input == calc.calls[0][1]
    assert final.content[2].type == "text" and final.content[2].text.startswith("tool said: ")
    assert final.stop_reason == "end_turn"
