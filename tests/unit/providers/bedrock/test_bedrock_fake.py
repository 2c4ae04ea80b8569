"""The fake Bedrock itself: it must reject what the real service rejects, or adapter tests lie."""

from __future__ import annotations

import datetime
import http.client
from typing import Any

import orjson
import pytest
from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.credentials import ReadOnlyCredentials  # type: ignore[import-untyped]
from botocore.eventstream import EventStreamBuffer  # type: ignore[import-untyped]

from tests.fakes.bedrock_upstream import TEST_ACCESS_KEY, TEST_SECRET_KEY, FakeBedrock

HELLO = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
PATH = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"


def signed_headers(
    fake: FakeBedrock,
    path: str,
    body: bytes,
    *,
    secret: str = TEST_SECRET_KEY,
    region: str = "us-east-1",
) -> dict[str, str]:
    request = AWSRequest(
        method="POST",
        url=f"{fake.base_url}{path}",
        data=body,
        headers={"content-type": "application/json"},
    )
    SigV4Auth(ReadOnlyCredentials(TEST_ACCESS_KEY, secret, None), "bedrock", region).add_auth(
        request
    )
    return dict(request.headers.items())


def send(
    fake: FakeBedrock, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def call(fake: FakeBedrock, path: str, payload: Any) -> tuple[int, dict[str, str], bytes]:
    body = orjson.dumps(payload)
    return send(fake, path, body, signed_headers(fake, path, body))


def test_a_correctly_signed_request_is_answered(fake: FakeBedrock) -> None:
    status, headers, body = call(fake, PATH, HELLO)
    assert status == 200
    assert orjson.loads(body)["output"]["message"]["content"] == [{"text": "echo: hi"}]
    assert headers["x-amzn-requestid"]


def _error(result: tuple[int, dict[str, str], bytes]) -> tuple[int, str, str]:
    status, headers, body = result
    return status, headers["x-amzn-errortype"].split(":", 1)[0], orjson.loads(body)["message"]


def test_missing_signature(fake: FakeBedrock) -> None:
    result = send(fake, PATH, orjson.dumps(HELLO), {"content-type": "application/json"})
    assert _error(result)[:2] == (403, "MissingAuthenticationTokenException")


def test_a_path_decoded_after_signing_fails(fake: FakeBedrock) -> None:
    body = orjson.dumps(HELLO)
    headers = signed_headers(fake, PATH, body)
    decoded = PATH.replace("%3A", ":")  # what a re-quoting HTTP client would put on the wire
    status, error, message = _error(send(fake, decoded, body, headers))
    assert (status, error) == (403, "InvalidSignatureException")
    assert "signature we calculated does not match" in message


def test_a_changed_body_fails(fake: FakeBedrock) -> None:
    body = orjson.dumps(HELLO)
    headers = signed_headers(fake, PATH, body)
    tampered = body.replace(b"hi", b"ho")
    assert _error(send(fake, PATH, tampered, headers))[:2] == (403, "InvalidSignatureException")


def test_a_wrong_secret_or_scope_fails(fake: FakeBedrock) -> None:
    body = orjson.dumps(HELLO)
    wrong_secret = signed_headers(fake, PATH, body, secret="nope")
    assert _error(send(fake, PATH, body, wrong_secret))[:2] == (403, "InvalidSignatureException")
    wrong_region = signed_headers(fake, PATH, body, region="eu-west-1")
    assert _error(send(fake, PATH, body, wrong_region))[:2] == (403, "InvalidSignatureException")


def test_an_old_signature_fails(fake: FakeBedrock, monkeypatch: pytest.MonkeyPatch) -> None:
    old = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=20)
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: old.replace(tzinfo=None))
    body = orjson.dumps(HELLO)
    status, error, message = _error(send(fake, PATH, body, signed_headers(fake, PATH, body)))
    assert (status, error, message) == (403, "InvalidSignatureException", "Signature expired.")


def test_unknown_operation(fake: FakeBedrock) -> None:
    path = "/model/arn:aws:bedrock:us-east-1:1:inference-profile/us.x/converse"  # "/" unencoded
    assert _error(call(fake, path, HELLO))[:2] == (404, "UnknownOperationException")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"messages": []}, "must start with a user message"),
        (
            {"messages": [HELLO["messages"][0], HELLO["messages"][0]]},
            "must alternate between user and assistant",
        ),
        ({"messages": [{"role": "user", "content": [{"text": " "}]}]}, "is blank"),
        ({**HELLO, "temperature": 1}, "extraneous key [temperature]"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"text": "x"}]},
                    {
                        "role": "assistant",
                        "content": [{"toolUse": {"toolUseId": "t", "name": "f", "input": {}}}],
                    },
                    {
                        "role": "user",
                        "content": [{"toolResult": {"toolUseId": "t", "content": [{"text": "r"}]}}],
                    },
                ]
            },
            "The toolConfig field must be defined when using toolUse and toolResult",
        ),
    ],
)
def test_validation(fake: FakeBedrock, payload: dict[str, Any], message: str) -> None:
    status, error, text = _error(call(fake, PATH, payload))
    assert (status, error) == (400, "ValidationException")
    assert message in text


def test_stream_frames_pass_botocore_crc_checks(fake: FakeBedrock) -> None:
    status, headers, body = call(fake, PATH.replace("/converse", "/converse-stream"), HELLO)
    assert status == 200
    assert headers["content-type"] == "application/vnd.amazon.eventstream"
    buffer = EventStreamBuffer()
    buffer.add_data(body)
    messages = list(buffer)
    kinds = [m.headers[":event-type"] for m in messages]
    assert kinds[0] == "messageStart"
    assert kinds[-2:] == ["messageStop", "metadata"]
    assert all(m.headers[":message-type"] == "event" for m in messages)
    assert all("p" in orjson.loads(m.payload) for m in messages)  # Bedrock's padding field


def test_exception_frame(fake: FakeBedrock) -> None:
    path = "/model/exception-mid-stream/converse-stream"
    status, _, body = call(fake, path, HELLO)
    assert status == 200
    buffer = EventStreamBuffer()
    buffer.add_data(body)
    last = list(buffer)[-1]
    assert last.headers[":message-type"] == "exception"
    assert last.headers[":exception-type"] == "throttlingException"


def test_titan_invoke(fake: FakeBedrock) -> None:
    path = "/model/amazon.titan-embed-text-v2%3A0/invoke"
    status, _, body = call(fake, path, {"inputText": "a b c", "dimensions": 512})
    data = orjson.loads(body)
    assert status == 200
    assert len(data["embedding"]) == 512 and data["inputTextTokenCount"] == 3
    bad = _error(call(fake, path, {"inputText": "a", "dimensions": 100}))
    assert bad[:2] == (400, "ValidationException")
