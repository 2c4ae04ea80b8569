"""Calling a running Modelyard server over HTTP, as any client does (so limits, the ledger and
routing apply to eval traffic): ``/v1/chat/completions`` for answers and judges,
``/v1/embeddings`` for the similarity grader.

Cost comes from the server when it reports one: the ``x-modelyard-cost-micros`` response header
or ``usage.cost_micros`` in the body (integer micro-dollars); otherwise it is unknown (``None``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
import orjson

from modelyard.core.chat import ChatRequest, Message, TextPart, ToolCall, ToolSpec
from modelyard.evals.runner import CallOutcome

COST_HEADER = "x-modelyard-cost-micros"
_RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})


def message_json(message: Message) -> dict[str, Any]:
    body: dict[str, Any] = {"role": message.role, "content": message.text()}
    if message.name:
        body["name"] = message.name
    if message.tool_call_id:
        body["tool_call_id"] = message.tool_call_id
    if message.tool_calls:
        body["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    return body


def tool_json(tool: ToolSpec) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        function["description"] = tool.description
    if tool.parameters is not None:
        function["parameters"] = dict(tool.parameters)
    return {"type": "function", "function": function}


def request_json(request: ChatRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [message_json(m) for m in request.messages],
    }
    if request.tools:
        body["tools"] = [tool_json(t) for t in request.tools]
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    return body


def parse_completion(data: dict[str, Any], headers: Any) -> CallOutcome:
    """A ``chat.completion`` body (and the response headers) as an outcome."""
    choices = data.get("choices") or []
    message = choices[0].get("message", {}) if choices else {}
    calls = tuple(
        ToolCall(
            id=str(c.get("id", "")),
            name=str(c.get("function", {}).get("name", "")),
            arguments=str(c.get("function", {}).get("arguments", "")),
        )
        for c in message.get("tool_calls") or []
    )
    usage = data.get("usage") or {}
    cost = headers.get(COST_HEADER) if headers is not None else None
    if cost is None:
        cost = usage.get("cost_micros")
    text = message.get("content") or ""
    refusal = message.get("refusal")
    refused = isinstance(refusal, str) and bool(refusal)
    if refused:  # the model declined: what it said instead is the output to record
        text = f"{text}\n\n{refusal}" if text else refusal
    return CallOutcome(
        text=text,
        refused=refused,
        tool_calls=calls,
        input_tokens=int(usage.get("prompt_tokens") or 0),
        output_tokens=int(usage.get("completion_tokens") or 0),
        cost_micros=int(cost) if cost is not None else None,
    )


def _error_text(status: int, raw: bytes) -> str:
    try:
        message = orjson.loads(raw).get("error", {}).get("message")
    except (orjson.JSONDecodeError, AttributeError):
        message = raw[:200].decode(errors="replace")
    return f"HTTP {status}: {message}"


class ServerClient:
    """A ``Caller`` (and an embedder) backed by a running server; use as an async context."""

    def __init__(self, url: str, headers: dict[str, str], timeout_s: float = 300) -> None:
        self.url = url.rstrip("/")
        self.headers = {"content-type": "application/json", **headers}
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ServerClient:
        self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def __call__(self, deployment: str, request: ChatRequest) -> CallOutcome:
        assert self._session is not None, "use ServerClient as 'async with'"
        body = orjson.dumps({**request_json(request), "model": deployment})
        started = time.perf_counter()
        try:
            async with self._session.post(
                f"{self.url}/v1/chat/completions", data=body, headers=self.headers
            ) as resp:
                raw = await resp.read()
                latency = time.perf_counter() - started
                if resp.status >= 400:
                    return CallOutcome(
                        error=_error_text(resp.status, raw),
                        latency_s=latency,
                        retryable=resp.status in _RETRYABLE_STATUS,
                    )
                outcome = parse_completion(orjson.loads(raw), resp.headers)
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
            return CallOutcome(error=f"{type(exc).__name__}: {exc}", retryable=True)
        return CallOutcome(**{**_fields(outcome), "latency_s": latency})

    def embedder(self, deployment: str) -> Any:
        """An ``embed(texts)`` for the similarity grader, through ``deployment``."""

        async def embed(texts: Sequence[str]) -> list[list[float]]:
            assert self._session is not None
            body = orjson.dumps({"model": deployment, "input": list(texts)})
            async with self._session.post(
                f"{self.url}/v1/embeddings", data=body, headers=self.headers
            ) as resp:
                raw = await resp.read()
                if resp.status >= 400:
                    raise ValueError(f"embeddings {deployment}: {_error_text(resp.status, raw)}")
            items = sorted(orjson.loads(raw)["data"], key=lambda d: d["index"])
            return [list(map(float, item["embedding"])) for item in items]

        return embed


def _fields(outcome: CallOutcome) -> dict[str, Any]:
    return {name: getattr(outcome, name) for name in outcome.__dataclass_fields__}


def text_request(deployment: str, prompt: str) -> ChatRequest:
    return ChatRequest(
        model=deployment, messages=[Message(role="user", content=(TextPart(prompt),))]
    )


async def gather_limited(limit: int, *aws: Any) -> list[Any]:
    semaphore = asyncio.Semaphore(limit)

    async def run(aw: Any) -> Any:
        async with semaphore:
            return await aw

    return await asyncio.gather(*(run(a) for a in aws))
