"""The fake Gemini speaks Google's wire format: checked with raw HTTP, no adapter involved."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest
from tests.fakes.gemini_upstream import FakeGemini

KEY = "AIza-fake-test"
HELLO = {"contents": [{"role": "user", "parts": [{"text": "one two three four five"}]}]}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGemini]:
    with FakeGemini(api_key=KEY) as server:
        yield server


def post(
    fake: FakeGemini, path: str, body: object, key: str | None = KEY
) -> tuple[int, dict[str, str], bytes]:
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["x-goog-api-key"] = key
    connection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    try:
        connection.request("POST", path, body=json.dumps(body), headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def error_of(payload: bytes) -> dict[str, Any]:
    error: dict[str, Any] = json.loads(payload)["error"]
    return error


def test_keys_are_checked_as_google_does(fake):
    status, _, payload = post(fake, "/v1beta/models/m:generateContent", HELLO, key=None)
    assert status == 403 and error_of(payload)["status"] == "PERMISSION_DENIED"
    status, _, payload = post(fake, "/v1beta/models/m:generateContent", HELLO, key="nope")
    error = error_of(payload)
    assert status == 400 and error["status"] == "INVALID_ARGUMENT"
    assert error["details"][0]["reason"] == "API_KEY_INVALID"
    path = f"/v1beta/models/m:generateContent?key={KEY}"
    assert post(fake, path, HELLO, key=None)[0] == 200


def test_body_shape(fake):
    status, _, payload = post(fake, "/v1beta/models/gemini-2.5-flash:generateContent", HELLO)
    body = json.loads(payload)
    assert status == 200
    (candidate,) = body["candidates"]
    assert candidate["content"] == {
        "parts": [{"text": "echo: one two three four five"}],
        "role": "model",
    }
    assert candidate["finishReason"] == "STOP" and "index" not in candidate
    assert body["usageMetadata"]["candidatesTokenCount"] == 6
    assert body["modelVersion"] == "gemini-2.5-flash" and body["responseId"]


def test_sse_and_json_array_streams(fake):
    status, headers, payload = post(fake, "/v1beta/models/m:streamGenerateContent?alt=sse", HELLO)
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    frames = [f for f in payload.split(b"\r\n\r\n") if f]
    chunks = [json.loads(f.removeprefix(b"data: ")) for f in frames]
    assert len(chunks) == 3
    assert "candidatesTokenCount" not in chunks[0]["usageMetadata"]
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] == 6
    assert [c["candidates"][0].get("finishReason") for c in chunks] == [None, None, "STOP"]
    text = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)
    assert text == "echo: one two three four five"
    # Without alt=sse the same chunks arrive as one JSON array.
    status, _, payload = post(fake, "/v1beta/models/m:streamGenerateContent", HELLO)
    array = json.loads(payload)
    assert status == 200 and len(array) == 3
    assert "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in array) == text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({**HELLO, "temperature": 1}, 'Unknown name "temperature"'),
        ({**HELLO, "generationConfig": {"max_tokens": 1}}, 'Unknown name "max_tokens"'),
        ({"contents": []}, "contents is not specified"),
        ({"contents": [{"role": "user", "parts": []}]}, "must not be empty"),
        ({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}, "valid role"),
        (
            {
                **HELLO,
                "generationConfig": {
                    "thinkingConfig": {"thinkingBudget": 1, "thinkingLevel": "LOW"}
                },
            },
            "only one of thinking budget and thinking level",
        ),
        (
            {"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": "%%%"}}]}]},
            "Base64 decoding failed",
        ),
    ],
)
def test_requests_google_refuses(fake, body, message):
    status, _, payload = post(fake, "/v1beta/models/m:generateContent", body)
    assert status == 400 and message in error_of(payload)["message"]


def test_rate_limit_has_retry_info_and_no_header(fake):
    status, headers, payload = post(fake, "/v1beta/models/fail-429:generateContent", HELLO)
    assert status == 429 and "retry-after" not in {h.lower() for h in headers}
    details = error_of(payload)["details"]
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "13s"} in details


def test_embedding_batches_are_limited(fake):
    one = {"model": "models/e", "content": {"parts": [{"text": "x"}]}}
    status, _, payload = post(fake, "/v1beta/models/e:batchEmbedContents", {"requests": [one]})
    assert status == 200 and len(json.loads(payload)["embeddings"][0]["values"]) == 768
    status, _, payload = post(
        fake, "/v1beta/models/e:batchEmbedContents", {"requests": [one] * 101}
    )
    assert status == 400 and "at most 100 requests" in error_of(payload)["message"]
    assert post(fake, "/v1beta/models/e:embedText", {"requests": [one]})[0] == 404
