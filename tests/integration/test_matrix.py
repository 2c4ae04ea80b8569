"""Conformance: {OpenAI SDK, Anthropic SDK} x {every upstream type} x every capability.

Each cell either works, or (the local model) answers a clear 400 naming the capability. The
fault cells (upstream 400, 429, 500, a stream cut in the middle) exist for the upstreams whose
fakes can inject them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.conftest import MATRIX_UPSTREAMS
from tests.integration.matrix_drivers import (
    PNG_1PX,
    TIME,
    WEATHER,
    AnthropicDriver,
    OpenAIDriver,
)
from tests.integration.server import RunningServer

Driver = OpenAIDriver | AnthropicDriver
UPSTREAMS = [*MATRIX_UPSTREAMS, "local"]
SYSTEM = "SYSTEM-MARKER-7731: answer briefly"


@pytest.fixture(scope="module", params=["openai-sdk", "anthropic-sdk"])
def driver(request: pytest.FixtureRequest, gateway: RunningServer) -> Driver:
    if request.param == "openai-sdk":
        return OpenAIDriver(gateway.base_url)
    return AnthropicDriver(gateway.url)


@pytest.fixture(scope="module")
def fakes(fake_upstream: FakeOpenAI, vendor_fakes: dict[str, Any]) -> dict[str, Any]:
    return {"openai": fake_upstream, "azure": fake_upstream, **vendor_fakes}


def dep(upstream: str, case: str = "ok") -> str:
    return "local" if upstream == "local" else f"m-{upstream}-{case}"


VENDORS = MATRIX_UPSTREAMS  # upstreams behind fakes that can also inject faults


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_plain_text(driver: Driver, upstream: str):
    answer = driver.text(dep(upstream), "hello matrix")
    if upstream == "local":
        assert answer.strip()
    else:
        assert answer == "echo: hello matrix"


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_system_prompt_reaches_upstream(driver: Driver, upstream: str, fakes: dict[str, Any]):
    assert driver.text(dep(upstream), "hi", system=SYSTEM)
    if upstream != "local":
        assert "SYSTEM-MARKER-7731" in json.dumps(fakes[upstream].last_request.json)


@pytest.mark.parametrize("upstream", VENDORS)
def test_multi_turn(driver: Driver, upstream: str, fakes: dict[str, Any]):
    assert driver.multi_turn(dep(upstream)) == "echo: second question"
    assert "first question" in json.dumps(fakes[upstream].last_request.json)


def test_multi_turn_local(driver: Driver):
    assert driver.multi_turn("local").strip()


@pytest.mark.parametrize("upstream", VENDORS)
def test_tool_round_trip(driver: Driver, upstream: str):
    assert driver.tool_round_trip(dep(upstream)) == "tool said: sunny"


@pytest.mark.parametrize("upstream", VENDORS)
def test_parallel_tools(driver: Driver, upstream: str):
    calls = driver.tool_calls(dep(upstream), WEATHER, TIME)
    assert [name for _, name, _ in calls] == ["get_weather", "get_time"]
    assert all(args == {"city": "Paris"} for _, _, args in calls)
    assert len({call_id for call_id, _, _ in calls}) == 2


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_streaming_text(driver: Driver, upstream: str):
    text = driver.stream_text(dep(upstream), "stream me")
    if upstream == "local":
        assert text.strip()
    else:
        assert text == "echo: stream me"


@pytest.mark.parametrize("upstream", VENDORS)
def test_streaming_tool_arguments(driver: Driver, upstream: str):
    calls = driver.stream_tool_calls(dep(upstream), WEATHER)
    assert [(name, args) for _, name, args in calls] == [("get_weather", {"city": "Paris"})]


@pytest.mark.parametrize("upstream", VENDORS)
def test_image_input(driver: Driver, upstream: str, fakes: dict[str, Any]):
    assert driver.image(dep(upstream))
    assert PNG_1PX[:40] in json.dumps(fakes[upstream].last_request.json)


def test_local_refuses_what_it_cannot_do(driver: Driver):
    # Images only: the embedded model calls tools (grammar-constrained; test_local_model.py).
    with pytest.raises(Exception) as info:
        driver.image("local")
    assert getattr(info.value, "status_code", None) == 400
    assert "does not support image input" in str(info.value)


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_json_schema_output(driver: Driver, upstream: str):
    result = driver.json_output(dep(upstream))
    assert isinstance(result, dict) and "answer" in result


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_usage_in_stream(driver: Driver, upstream: str):
    streamed = driver.usage(dep(upstream), stream=True)
    assert streamed[0] > 0 and streamed[1] > 0
    if upstream != "local":  # the fakes are deterministic; the local model samples
        assert streamed == driver.usage(dep(upstream), stream=False)


@pytest.mark.parametrize("upstream", VENDORS)
def test_usage_is_the_same_through_both_dialects(upstream: str, gateway: RunningServer):
    via_openai = OpenAIDriver(gateway.base_url).usage(dep(upstream), stream=False)
    via_anthropic = AnthropicDriver(gateway.url).usage(dep(upstream), stream=False)
    assert via_openai == via_anthropic


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("case", "status"), [("fail-400", 400), ("fail-429", 429), ("fail-500", 502)]
)
@pytest.mark.parametrize("upstream", VENDORS)
def test_upstream_errors(driver: Driver, upstream: str, case: str, status: int, stream: bool):
    got, headers = driver.error(dep(upstream, case), stream)
    assert got == status
    if status == 429:
        assert int(headers["retry-after"]) >= 1


@pytest.mark.parametrize("upstream", VENDORS)
def test_mid_stream_disconnect_ends_with_an_error_event(driver: Driver, upstream: str):
    assert driver.error(dep(upstream, "drop-mid-stream"), stream=True)[0] == -1


def test_azure_cells_use_deployment_urls(gateway: RunningServer, fake_upstream: FakeOpenAI):
    OpenAIDriver(gateway.base_url).text(dep("azure"), "where am I")
    sent = fake_upstream.last_request
    assert sent.path == "/openai/deployments/model-x/chat/completions"
    assert sent.query == "api-version=2024-10-21"
