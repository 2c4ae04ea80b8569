"""Render the fake Gemini's answers as Google's JSON bodies, SSE chunks and embeddings.

Shapes follow the real API: candidates hold ``content: {parts, role: "model"}``, ``finishReason``
and, past the first, an ``index`` (Google's JSON leaves out zero values, so candidate 0 has
none). A stream sends each thought, the function calls, and the text two words at a time as
separate ``GenerateContentResponse`` chunks; every chunk carries the prompt's usage, and the last
one the full ``usageMetadata`` and the finish reason. Safety blocks are a candidate with
``finishReason: SAFETY``, ``safetyRatings`` and no content; a blocked prompt is a body with
``promptFeedback.blockReason`` and no candidates.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Mapping
from typing import Any

import orjson

from .gemini_model import Answer, Candidate
from .gemini_wire import JSONObject
from .openai_wire import split_words

DEFAULT_DIMENSIONS = 768
_WORDS_PER_CHUNK = 2
_RATINGS = [
    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
]


def response_body(answer: Answer) -> JSONObject:
    return {
        "candidates": [
            _candidate(c, _parts(c, answer.include_thoughts)) for c in answer.candidates
        ],
        "usageMetadata": answer.usage,
        "modelVersion": answer.model,
        "responseId": answer.response_id,
    }


def safety_blocked_body(answer: Answer) -> JSONObject:
    """The answer as the real API returns it when the output tripped a safety filter."""
    candidates = []
    for candidate in answer.candidates:
        entry: JSONObject = {"finishReason": "SAFETY", "safetyRatings": _RATINGS}
        if candidate.index:
            entry["index"] = candidate.index
        candidates.append(entry)
    usage = {k: v for k, v in answer.usage.items() if k.startswith("prompt")}
    usage["totalTokenCount"] = usage["promptTokenCount"]
    return {**_tail(answer), "candidates": candidates, "usageMetadata": usage}


def prompt_blocked_body(answer: Answer) -> JSONObject:
    usage = {k: v for k, v in answer.usage.items() if k.startswith("prompt")}
    usage["totalTokenCount"] = usage["promptTokenCount"]
    feedback = {"blockReason": "SAFETY", "safetyRatings": _RATINGS}
    return {"promptFeedback": feedback, "usageMetadata": usage, **_tail(answer)}


def stream_chunks(answer: Answer) -> list[JSONObject]:
    """The chunks of a streamed answer, in the order they are sent."""
    pieces = {c.index: _pieces(c, answer.include_thoughts) for c in answer.candidates}
    steps = max(len(p) for p in pieces.values())
    partial = {k: v for k, v in answer.usage.items() if k.startswith("prompt")}
    partial["totalTokenCount"] = partial["promptTokenCount"]
    chunks: list[JSONObject] = []
    for step in range(steps):
        entries = []
        for candidate in answer.candidates:
            own = pieces[candidate.index]
            if step < len(own):
                entry = _candidate(candidate, own[step], finished=step == len(own) - 1)
                entries.append(entry)
        usage = answer.usage if step == steps - 1 else partial
        chunks.append({"candidates": entries, "usageMetadata": usage, **_tail(answer)})
    return chunks


def sse_frames(chunks: list[JSONObject]) -> list[bytes]:
    # Google separates events with CRLF pairs.
    return [b"data: " + orjson.dumps(chunk) + b"\r\n\r\n" for chunk in chunks]


def json_array_frames(chunks: list[JSONObject]) -> list[bytes]:
    """Without ``alt=sse`` the stream is one JSON array, sent element by element."""
    frames = [(b"[" if i == 0 else b",\r\n") + orjson.dumps(c) for i, c in enumerate(chunks)]
    return [*frames, b"]"]


def error_frame(code: int, message: str, status: str) -> bytes:
    error = {"error": {"code": code, "message": message, "status": status}}
    return b"data: " + orjson.dumps(error) + b"\r\n\r\n"


def _tail(answer: Answer) -> JSONObject:
    return {"modelVersion": answer.model, "responseId": answer.response_id}


def _candidate(
    candidate: Candidate, parts: list[JSONObject], *, finished: bool = True
) -> JSONObject:
    entry: JSONObject = {"content": {"parts": parts, "role": "model"}}
    if finished:
        entry["finishReason"] = candidate.finish
    if candidate.index:
        entry["index"] = candidate.index
    return entry


def _parts(candidate: Candidate, include_thoughts: bool) -> list[JSONObject]:
    parts: list[JSONObject] = []
    if candidate.thought and include_thoughts:
        parts.append({"text": candidate.thought, "thought": True})
    parts.extend(candidate.calls)
    if candidate.text is not None:
        parts.append({"text": candidate.text})
    return parts


def _pieces(candidate: Candidate, include_thoughts: bool) -> list[list[JSONObject]]:
    pieces: list[list[JSONObject]] = []
    if candidate.thought and include_thoughts:
        pieces.append([{"text": candidate.thought, "thought": True}])
    if candidate.calls:
        pieces.append(list(candidate.calls))
    if candidate.text is not None:
        words = split_words(candidate.text) or [""]
        for start in range(0, len(words), _WORDS_PER_CHUNK):
            pieces.append([{"text": "".join(words[start : start + _WORDS_PER_CHUNK])}])
    return pieces


def embeddings_body(body: Mapping[str, Any]) -> JSONObject:
    embeddings = []
    for request in body["requests"]:
        text = " ".join(str(p.get("text", "")) for p in request["content"]["parts"])
        dimensions = request.get("outputDimensionality") or DEFAULT_DIMENSIONS
        embeddings.append({"values": vector(text, int(dimensions))})
    return {"embeddings": embeddings}


def vector(text: str, dimensions: int) -> list[float]:
    """A unit vector that depends only on ``text`` (the same text always embeds the same)."""
    raw = b""
    counter = 0
    while len(raw) < dimensions * 4:
        raw += hashlib.sha256(f"{counter}:{text}".encode()).digest()
        counter += 1
    values = [x / 2**31 for x in struct.unpack(f"<{dimensions}i", raw[: dimensions * 4])]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [round(v / norm, 6) for v in values]
