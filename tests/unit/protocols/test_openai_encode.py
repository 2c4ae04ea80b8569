import base64
import struct
from typing import Any

import orjson

from modelyard.core.chat import ChatResult, Choice, Message, TextPart, ToolCall, Usage
from modelyard.core.embeddings import EmbeddingResult
from modelyard.core.errors import QueueFull
from modelyard.core.events import Finished, TextDelta, ToolCallDelta, UsageReport
from modelyard.protocols.headers import error_headers
from modelyard.protocols.openai import encode, errors


def _frame(raw: bytes | None) -> dict[str, Any]:
    assert raw is not None
    assert raw.startswith(b"data: ") and raw.endswith(b"\n\n")
    frame: dict[str, Any] = orjson.loads(raw[6:-2])
    return frame


def test_completion_json_shape():
    result = ChatResult(
        choices=[
            Choice(
                0,
                Message("assistant", (), tool_calls=(ToolCall("c1", "f", '{"a":1}'),)),
                "tool_calls",
            )
        ],
        usage=Usage(10, 5, cached_input_tokens=4, reasoning_tokens=2),
    )
    body = orjson.loads(encode.completion_json(result, "chatcmpl-1", 123, "dep"))
    assert body["model"] == "dep" and body["object"] == "chat.completion"
    msg = body["choices"][0]["message"]
    assert msg["content"] is None
    assert msg["tool_calls"][0]["function"] == {"name": "f", "arguments": '{"a":1}'}
    assert body["usage"]["total_tokens"] == 15
    assert body["usage"]["prompt_tokens_details"]["cached_tokens"] == 4
    assert body["usage"]["completion_tokens_details"]["reasoning_tokens"] == 2


def test_chunks_role_first_then_deltas_and_usage_only_when_asked():
    enc = encode.ChunkEncoder("id1", 1, "dep", include_usage=True)
    first = _frame(enc.encode(TextDelta("Hel")))
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": "Hel"}
    assert first["object"] == "chat.completion.chunk" and first["model"] == "dep"
    second = _frame(enc.encode(TextDelta("lo")))
    assert second["choices"][0]["delta"] == {"content": "lo"}
    call = _frame(enc.encode(ToolCallDelta(0, "{", id="c1", name="f")))
    assert call["choices"][0]["delta"]["tool_calls"][0] == {
        "index": 0,
        "id": "c1",
        "type": "function",
        "function": {"arguments": "{", "name": "f"},
    }
    done = _frame(enc.encode(Finished("stop")))
    assert done["choices"][0]["finish_reason"] == "stop"
    assert enc.encode(UsageReport(Usage(3, 2))) is None  # held for the end
    tail = enc.close()
    usage = _frame(tail[: -len(encode.DONE_FRAME)])
    assert usage["choices"] == [] and usage["usage"]["total_tokens"] == 5
    assert tail.endswith(encode.DONE_FRAME)
    quiet = encode.ChunkEncoder("id1", 1, "dep", include_usage=False)
    quiet.encode(UsageReport(Usage(3, 2)))
    assert quiet.close() == encode.DONE_FRAME


def test_embeddings_base64_is_little_endian_float32():
    result = EmbeddingResult(vectors=[[1.0, -2.5]], usage=Usage(3))
    body = orjson.loads(encode.embeddings_json(result, "e", base64_format=True))
    raw = base64.b64decode(body["data"][0]["embedding"])
    assert struct.unpack("<2f", raw) == (1.0, -2.5)
    assert body["usage"] == {"prompt_tokens": 3, "total_tokens": 3}


def test_content_json_keeps_strings_plain():
    assert encode.content_json(Message("user", (TextPart("a"), TextPart("b")))) == "ab"


def test_error_rendering_with_retry_after():
    err = QueueFull("busy", code="queue_full", retry_after=1.2)
    body = orjson.loads(errors.error_body(err))
    assert body == {
        "error": {
            "message": "busy",
            "type": "rate_limit_error",
            "param": None,
            "code": "queue_full",
        }
    }
    assert error_headers(err) == {"retry-after": "2"}
