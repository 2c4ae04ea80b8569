"""The Responses API through the official ``openai`` SDK, on every upstream family."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from modelyard.protocols.openai.responses import SPEC_COMMIT
from tests.integration.conftest import MATRIX_UPSTREAMS
from tests.integration.responses_spec import spec_commit, spec_errors

WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


def dep(upstream: str, case: str = "ok") -> str:
    return f"m-{upstream}-{case}"


@pytest.mark.parametrize("upstream", MATRIX_UPSTREAMS)
def test_create_plain_text(client: openai.OpenAI, upstream: str):
    response = client.responses.create(model=dep(upstream), input="hello responses")
    assert response.status == "completed"
    assert response.output_text == "echo: hello responses"
    assert response.id.startswith("resp_")
    assert response.usage is not None and response.usage.input_tokens > 0


@pytest.mark.parametrize("upstream", MATRIX_UPSTREAMS)
def test_stream_final_response(client: openai.OpenAI, upstream: str):
    with client.responses.stream(model=dep(upstream), input="hello stream") as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert final.output_text == "echo: hello stream"
    assert final.status == "completed"
    numbers = [e.sequence_number for e in events]
    assert numbers == sorted(set(numbers)) and numbers[0] == 0
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds


@pytest.mark.parametrize("upstream", MATRIX_UPSTREAMS)
def test_function_tool_round_trip(client: openai.OpenAI, upstream: str):
    first = client.responses.create(model=dep(upstream), input="weather in Paris?", tools=[WEATHER])
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert calls[0].call_id != calls[0].id
    assert json.loads(calls[0].arguments) == {"city": "Paris"}
    second = client.responses.create(
        model=dep(upstream),
        tools=[WEATHER],
        input=[
            {"role": "user", "content": "weather in Paris?"},
            {
                "type": "function_call",
                "call_id": calls[0].call_id,
                "name": "get_weather",
                "arguments": calls[0].arguments,
            },
            {"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"},
        ],
    )
    assert second.output_text == "tool said: sunny"


@pytest.mark.parametrize("upstream", MATRIX_UPSTREAMS)
def test_bodies_validate_against_the_spec(client: openai.OpenAI, upstream: str):
    raw = client.responses.with_raw_response.create(
        model=dep(upstream), input="weather in Paris?", tools=[WEATHER], metadata={"k": "v"}
    )
    assert spec_errors("Response", raw.http_response.json()) == []
    plain = client.responses.with_raw_response.create(model=dep(upstream), input="hi")
    assert spec_errors("Response", plain.http_response.json()) == []


def test_spec_validator_catches_a_broken_body(client: openai.OpenAI):
    body = client.responses.with_raw_response.create(model=dep("openai"), input="x").http_response
    broken = body.json()
    del broken["output"][0]["content"][0]["annotations"]
    assert spec_errors("Response", broken)
    assert spec_commit() == SPEC_COMMIT


def _error(call: Any) -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as caught:
        call()
    return caught.value


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"frobnicate": 1}, "frobnicate"),
        ({"input": [{"type": "telepathy", "x": 1}]}, "input[0].type"),
        ({"tools": [{"type": "teleporter"}]}, "tools[0].type"),
        ({"tool_choice": {"type": "web_search_preview"}}, "tool_choice.type"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
        ({"metadata": {"k": "v" * 513}}, "metadata.k"),
        ({"background": True, "store": False}, "background"),  # background needs store
    ],
)
def test_bad_input_is_a_400_naming_the_field(client: openai.OpenAI, extra: Any, param: str):
    body = {"model": dep("openai"), "input": "hi", **extra}
    err = _error(lambda: client.post("/responses", body=body, cast_to=object))
    assert err.status_code == 400
    assert err.body["param"] == param  # type: ignore[index]
    assert err.body["type"] == "invalid_request_error"  # type: ignore[index]


def test_hosted_tools_are_left_out_and_disclosed(client: openai.OpenAI, fake_upstream: Any):
    raw = client.responses.with_raw_response.create(
        model=dep("openai"), input="hi", tools=[WEATHER, {"type": "web_search"}], tool_choice="none"
    )
    assert raw.headers["x-modelyard-hosted-tools-omitted"] == "web_search"
    body = raw.http_response.json()
    assert "web_search" in body["modelyard"]["warnings"][0]
    sent = fake_upstream.last_request.json
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather"]


def test_namespace_tools_are_flattened_and_split_back(client: openai.OpenAI, fake_upstream: Any):
    namespace = {"type": "namespace", "name": "crm", "description": "CRM", "tools": [WEATHER]}
    body = {"model": dep("openai"), "input": "weather?", "tools": [namespace]}
    answer: Any = client.post("/responses", body=body, cast_to=object)
    assert fake_upstream.last_request.json["tools"][0]["function"]["name"] == "crm__get_weather"
    call = answer["output"][-1]
    assert (call["type"], call["namespace"], call["name"]) == (
        "function_call",
        "crm",
        "get_weather",
    )


def test_instructions_and_formats_reach_the_upstream(client: openai.OpenAI, fake_upstream: Any):
    client.responses.create(
        model=dep("openai"),
        instructions="INSTRUCTION-MARKER-5150",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        text={"format": {"type": "json_schema", "name": "o", "schema": {"type": "object"}}},
        max_output_tokens=64,
    )
    sent = fake_upstream.last_request.json
    assert "INSTRUCTION-MARKER-5150" in json.dumps(sent["messages"][0])
    assert sent["response_format"]["type"] == "json_schema"
    assert sent.get("max_completion_tokens", sent.get("max_tokens")) == 64


@pytest.mark.parametrize("upstream", ["openai", "anthropic"])
def test_failure_before_the_first_byte_is_a_real_status(client: openai.OpenAI, upstream: str):
    err = _error(lambda: client.responses.create(model=dep(upstream, "fail-500"), input="hi"))
    assert err.status_code == 502
    err = _error(
        lambda: client.responses.create(model=dep(upstream, "fail-429"), input="hi", stream=True)
    )
    assert err.status_code == 429


@pytest.mark.parametrize("upstream", MATRIX_UPSTREAMS)
def test_failure_mid_stream_ends_with_response_failed(client: openai.OpenAI, upstream: str):
    stream = client.responses.create(
        model=dep(upstream, "drop-mid-stream"), input="hello there friend", stream=True
    )
    events = list(stream)
    assert events[0].type == "response.created"
    assert events[-1].type == "response.failed"
    last: Any = events[-1]
    assert last.response.status == "failed" and last.response.error.message
    numbers = [e.sequence_number for e in events]
    assert numbers == list(range(len(events)))


def test_input_tokens(client: openai.OpenAI):
    body = {"model": dep("openai"), "input": "count these words please " * 10}
    answer: Any = client.post("/responses/input_tokens", body=body, cast_to=object)
    assert answer["object"] == "response.input_tokens"
    assert answer["input_tokens"] > 10


@pytest.mark.local_model
def test_local_model_create_stream_and_continue(client: openai.OpenAI):
    first = client.responses.create(model="local", input="Say hello.", max_output_tokens=16)
    assert first.output_text.strip()
    raw = client.responses.with_raw_response.retrieve(first.id).http_response.json()
    assert spec_errors("Response", raw) == []
    with client.responses.stream(
        model="local", input="Say hello again.", previous_response_id=first.id, max_output_tokens=16
    ) as stream:
        last: Any = list(stream)[-1]  # 16 tokens may cut it: the SDK's final is only "completed"
    assert last.type in ("response.completed", "response.incomplete")
    assert last.response.output_text.strip()


def test_signed_reasoning_goes_back_with_store_false(client: openai.OpenAI, vendor_fakes: Any):
    """Anthropic's signed thinking comes out as a reasoning item whose encrypted_content is the
    signature, and passing the items back (no stored state) continues the signed chain."""
    first = client.responses.create(
        model=dep("anthropic"),
        input="weather in Paris?",
        tools=[WEATHER],
        reasoning={"effort": "high"},
        include=["reasoning.encrypted_content"],
        store=False,
    )
    kinds = [item.type for item in first.output]
    assert kinds == ["reasoning", "function_call"]
    reasoning: Any = first.output[0]
    assert reasoning.encrypted_content and reasoning.summary[0].text
    call: Any = first.output[1]
    items: Any = [
        {"role": "user", "content": "weather in Paris?"},
        first.output[0].model_dump(exclude_none=True),
        first.output[1].model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
    ]
    second = client.responses.create(
        model=dep("anthropic"),
        input=items,
        tools=[WEATHER],
        reasoning={"effort": "high"},
        store=False,
    )
    assert second.output_text == "tool said: sunny"
    sent = vendor_fakes["anthropic"].last_request.json["messages"][1]["content"]
    assert sent[0] == {
        "type": "thinking",
        "thinking": reasoning.summary[0].text,
        "signature": reasoning.encrypted_content,
    }


@pytest.mark.parametrize("upstream", MATRIX_UPSTREAMS)
def test_stored_lifecycle_on_every_family(client: openai.OpenAI, upstream: str, fakes: Any):
    """create → retrieve → input_items → stream continuing it → a conversation → delete, each
    against one deployment of every upstream family; the earlier turn reaches the upstream."""
    first = client.responses.create(model=dep(upstream), input=f"LIFECYCLE-{upstream}")
    assert client.responses.retrieve(first.id).output_text == f"echo: LIFECYCLE-{upstream}"
    items = client.responses.input_items.list(first.id)
    assert [i.type for i in items.data] == ["message"]
    with client.responses.stream(
        model=dep(upstream), input="and then?", previous_response_id=first.id
    ) as stream:
        second = stream.get_final_response()
    assert second.output_text == "echo: and then?"
    assert f"LIFECYCLE-{upstream}" in json.dumps(fakes[upstream].last_request.json)
    conv = client.conversations.create(metadata={"family": upstream})
    client.responses.create(model=dep(upstream), input="in a conversation", conversation=conv.id)
    listed = client.conversations.items.list(conv.id, order="asc")
    assert [i.type for i in listed.data] == ["message", "message"]
    client.conversations.delete(conv.id)
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)


@pytest.fixture(scope="module")
def fakes(fake_upstream: Any, vendor_fakes: dict[str, Any]) -> dict[str, Any]:
    return {"openai": fake_upstream, "azure": fake_upstream, **vendor_fakes}


@pytest.mark.local_model
def test_local_model_truncation_auto_drops_old_turns_disabled_is_a_400(client: openai.OpenAI):
    """The local model's window (4096 tokens, unconfigured) is overflowed by an old turn of
    about 6000 tokens: ``auto`` drops it and says so, ``disabled`` is the spec's 400."""
    old = "an old and long story " * 1100  # 24,200 characters, about 6000 tokens
    items: Any = [
        {"role": "user", "content": old},
        {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": "Say hello."},
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="local", input=items, max_output_tokens=16)
    error: Any = caught.value.body
    assert (error["param"], error["code"]) == ("input", "context_length_exceeded")
    kept = client.responses.create(
        model="local",
        input=items,
        instructions="Be brief.",
        truncation="auto",
        max_output_tokens=16,
        store=False,
    )
    assert kept.truncation == "auto"
    raw: Any = kept.model_dump()
    warnings = raw["modelyard"]["warnings"]
    assert any("oldest 1 message of" in w for w in warnings), warnings
    # What was sent: the instructions and the last turn, far below the dropped story.
    assert kept.usage is not None and 0 < kept.usage.input_tokens < 200
