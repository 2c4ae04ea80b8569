"""Each fault the fake injects reaches the official SDK as the exception the real API causes."""

from __future__ import annotations

import http.client
import json
import threading
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.fakes import FakeOpenAI
from tests.fakes.pauses import record_pauses
from tests.waiting import DEADLINE_S, wait_until

from .conftest import API_KEY

USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "one two three four"}]


def send(
    fake: FakeOpenAI, method: str, path: str, body: bytes = b"", /, **headers: str
) -> tuple[int, dict[str, Any]]:
    connection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("model", "exception", "status"),
    [
        ("fail-400", openai.BadRequestError, 400),
        ("fail-401", openai.AuthenticationError, 401),
        ("fail-403", openai.PermissionDeniedError, 403),
        ("fail-404", openai.NotFoundError, 404),
        ("fail-429", openai.RateLimitError, 429),
        ("fail-500", openai.InternalServerError, 500),
        ("fail-503", openai.InternalServerError, 503),
        ("fail-502", openai.InternalServerError, 502),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_failures_raise_the_matching_sdk_error(
    client: openai.OpenAI,
    model: str,
    exception: type[openai.APIStatusError],
    status: int,
    stream: bool,
) -> None:
    with pytest.raises(exception) as info:
        client.chat.completions.create(model=model, messages=USER, stream=stream)
    error = info.value
    assert error.status_code == status
    assert isinstance(error.body, dict) and set(error.body) == {"message", "type", "param", "code"}
    assert error.response.headers["x-request-id"].startswith("req_")


def test_failure_details_match_the_real_api(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="fail-400", messages=USER)
    assert bad.value.param == "temperature" and bad.value.type == "invalid_request_error"
    with pytest.raises(openai.AuthenticationError) as auth:
        client.chat.completions.create(model="fail-401", messages=USER)
    assert auth.value.code == "invalid_api_key" and API_KEY not in auth.value.message
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="fail-404", messages=USER)
    assert missing.value.code == "model_not_found" and "`fail-404`" in missing.value.message
    with pytest.raises(openai.RateLimitError) as limited:
        client.embeddings.create(model="fail-429", input="x")
    assert limited.value.code == "rate_limit_exceeded"
    headers = limited.value.response.headers
    assert headers["retry-after"] == "2" and headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-limit-requests"] == "500"
    with pytest.raises(openai.InternalServerError) as down:
        client.chat.completions.create(model="fail-500", messages=USER)
    assert down.value.type == "server_error"


def test_wrong_or_missing_key_is_rejected(fake: FakeOpenAI) -> None:
    key = "sk-wrong-key-99999"
    wrong = openai.OpenAI(base_url=fake.base_url, api_key=key, max_retries=0)
    with wrong, pytest.raises(openai.AuthenticationError) as info:
        wrong.models.list()
    assert info.value.code == "invalid_api_key"
    assert info.value.message.startswith("Error code: 401 - Incorrect API key provided: sk-***")
    assert key not in info.value.message and "*9999. You can find" in info.value.message
    status, body = send(fake, "GET", "/v1/models")
    assert status == 401 and body["error"]["message"].startswith("You didn't provide an API key")
    assert [r.path for r in fake.requests] == ["/v1/models", "/v1/models"]


def test_slow_delays_the_answer_and_the_first_byte(
    client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses = record_pauses(monkeypatch)
    completion = client.chat.completions.create(model="slow-300", messages=USER)
    assert pauses == [0.3]  # the whole pause was over before the answer came
    assert completion.choices[0].message.content == "echo: one two three four"
    stream = client.chat.completions.create(model="slow-300", messages=USER, stream=True)
    next(iter(stream))
    assert pauses == [0.3, 0.3]  # and before the stream's first byte
    stream.close()


def test_trickle_spaces_the_stream_frames(
    client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses = record_pauses(monkeypatch)
    stream = client.chat.completions.create(model="trickle-50", messages=USER, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream)
    assert text == "echo: one two three four"
    assert pauses == [0.05] * 7  # role, 5 words, finish, [DONE]: 8 frames, 7 gaps


def test_hang_never_answers_but_the_server_lives_on(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APITimeoutError):  # the client gave up: the fake never answered
        client.with_options(timeout=0.3).chat.completions.create(model="hang", messages=USER)
    after = client.chat.completions.create(model="gpt-4o", messages=USER)
    assert after.choices[0].message.content == "echo: one two three four"


def test_stop_releases_a_hanging_request() -> None:
    outcome: list[BaseException] = []
    fake = FakeOpenAI().start()
    client = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0, timeout=10)

    def call() -> None:
        try:
            client.chat.completions.create(model="hang", messages=USER)
        except openai.APIError as error:
            outcome.append(error)

    caller = threading.Thread(target=call)
    caller.start()
    wait_until(lambda: fake.requests, "the hanging request to arrive")
    fake.stop()
    caller.join(DEADLINE_S)  # the client's own timeout is 10 s: stop must answer before it
    client.close()
    assert not caller.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], openai.InternalServerError)


def test_drop_mid_stream_breaks_the_connection(client: openai.OpenAI) -> None:
    received: list[str] = []
    stream = client.chat.completions.create(model="drop-mid-stream", messages=USER, stream=True)
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert received == ["", "echo:", " one"]
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="drop-mid-stream", messages=USER)
    with pytest.raises(openai.APIConnectionError):
        client.embeddings.create(model="drop-mid-stream", input="x")


def test_truncated_sse_breaks_inside_a_frame(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    received: list[ChatCompletionChunk] = []
    stream = client.chat.completions.create(model="truncated-sse", messages=USER, stream=True)
    with pytest.raises(openai.APIConnectionError):
        received.extend(stream)
    assert [c.choices[0].delta.content for c in received] == ["", "echo:"]
    connection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    body = json.dumps({"model": "truncated-sse", "messages": USER, "stream": True})
    connection.request("POST", "/v1/chat/completions", body, {"authorization": f"Bearer {API_KEY}"})
    with pytest.raises(http.client.IncompleteRead) as cut:
        connection.getresponse().read()
    connection.close()
    frames = cut.value.partial.split(b"\n\n")
    assert len(frames) == 3 and frames[2].startswith(b'data: {"id":"chatcmpl-')
    json.loads(frames[1].removeprefix(b"data: "))


def test_error_mid_stream_is_an_in_stream_error_event(client: openai.OpenAI) -> None:
    received: list[ChatCompletionChunk] = []
    stream = client.chat.completions.create(model="error-mid-stream", messages=USER, stream=True)
    with pytest.raises(openai.APIError) as info:
        received.extend(stream)
    assert not isinstance(info.value, openai.APIStatusError)
    assert len(received) == 3
    assert info.value.body == {
        "message": "The server had an error while processing your request. Sorry about that!",
        "type": "server_error",
        "param": None,
        "code": None,
    }


def test_malformed_json_is_not_json(client: openai.OpenAI) -> None:
    # The SDK does not wrap a body it cannot decode: it surfaces the decoder's own error.
    with pytest.raises(json.JSONDecodeError):
        client.chat.completions.create(model="malformed-json", messages=USER)
    with pytest.raises(json.JSONDecodeError):
        list(client.chat.completions.create(model="malformed-json", messages=USER, stream=True))
    with pytest.raises(json.JSONDecodeError):
        client.embeddings.create(model="malformed-json", input="x")


def test_scripted_model_gets_a_custom_answer(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    seen: list[dict[str, Any]] = []

    async def teapot(request: Request, body: dict[str, Any]) -> Response:
        seen.append(body)
        error = {"message": "short and stout", "type": "teapot", "param": None, "code": "tea"}
        return JSONResponse({"error": error}, status_code=418, headers={"x-tea": "earl-grey"})

    fake.script("teapot", teapot)
    try:
        with pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(model="teapot", messages=USER)
        assert info.value.status_code == 418 and info.value.response.headers["x-tea"] == "earl-grey"
        assert seen == [{"model": "teapot", "messages": USER}]
    finally:
        fake.unscript("teapot")
    normal = client.chat.completions.create(model="teapot", messages=USER)
    assert normal.choices[0].message.content == "echo: one two three four"


def test_bad_requests_get_openai_errors(fake: FakeOpenAI) -> None:
    auth = {"authorization": f"Bearer {API_KEY}"}
    status, body = send(fake, "POST", "/v1/nowhere", b"{}", **auth)
    assert status == 404 and body["error"]["message"] == "Invalid URL (POST /v1/nowhere)"
    assert set(body["error"]) == {"message", "type", "param", "code"}
    status, body = send(fake, "GET", "/v1/chat/completions", **auth)
    assert status == 405 and body["error"]["type"] == "invalid_request_error"
    status, body = send(fake, "POST", "/v1/chat/completions", b'{"model": "x", ', **auth)
    assert status == 400 and "could not parse the JSON body" in body["error"]["message"]
    status, body = send(fake, "POST", "/v1/chat/completions", b'{"model": "x"}', **auth)
    assert status == 400 and body["error"]["param"] == "messages"
    assert body["error"]["code"] == "missing_required_parameter"
    status, body = send(fake, "POST", "/v1/embeddings", b'{"model": "x", "input": ""}', **auth)
    assert status == 400 and body["error"]["param"] == "input"
