"""One client per served dialect, each exposing the same scenario steps for the matrix test."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import anthropic
import openai
from anthropic.types import MessageParam

PNG_1PX = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJ"
    "RU5ErkJggg=="
)
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
TIME = {**WEATHER, "name": "get_time", "description": "Time in a city"}
ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
    "additionalProperties": False,
}
Call = tuple[str, str, dict[str, Any]]  # id, name, arguments


class OpenAIDriver:
    name = "openai-sdk"

    def __init__(self, base_url: str) -> None:
        self.client = openai.OpenAI(base_url=base_url, api_key="x", max_retries=0, timeout=60)

    def _create(self, dep: str, messages: Sequence[Mapping[str, Any]], **kw: Any) -> Any:
        kw.setdefault("max_tokens", 64)
        # The drivers speak plain JSON-shaped messages (dumps of the SDK's own answers among
        # them), not the SDK's TypedDicts: this is the one place they are handed over.
        return self.client.chat.completions.create(model=dep, messages=messages, **kw)  # type: ignore[arg-type]

    def text(self, dep: str, user: str, system: str | None = None) -> str:
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": user}
        ]
        return self._create(dep, messages).choices[0].message.content or ""

    def multi_turn(self, dep: str) -> str:
        messages = [
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "echo: first question"},
            {"role": "user", "content": "second question"},
        ]
        return self._create(dep, messages).choices[0].message.content or ""

    @staticmethod
    def _tools(*specs: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {
                "type": "function",
                "function": {
                    "name": s["name"],
                    "description": s["description"],
                    "parameters": s["schema"],
                },
            }
            for s in specs
        ]

    def tool_calls(self, dep: str, *specs: dict[str, Any]) -> list[Call]:
        msg = (
            self._create(dep, [{"role": "user", "content": "weather?"}], tools=self._tools(*specs))
            .choices[0]
            .message
        )
        return [
            (c.id, c.function.name, json.loads(c.function.arguments)) for c in msg.tool_calls or []
        ]

    def tool_round_trip(self, dep: str) -> str:
        messages: list[dict[str, Any]] = [{"role": "user", "content": "weather in Paris?"}]
        first = self._create(dep, messages, tools=self._tools(WEATHER)).choices[0].message
        call = (first.tool_calls or [])[0]
        messages.append(first.model_dump(exclude_none=True))
        messages.append({"role": "tool", "tool_call_id": call.id, "content": "sunny"})
        return (
            self._create(dep, messages, tools=self._tools(WEATHER)).choices[0].message.content or ""
        )

    def stream_text(self, dep: str, user: str) -> str:
        chunks = self._create(dep, [{"role": "user", "content": user}], stream=True)
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    def stream_tool_calls(self, dep: str, *specs: dict[str, Any]) -> list[Call]:
        calls: dict[int, list[str]] = {}
        stream = self._create(
            dep, [{"role": "user", "content": "weather?"}], tools=self._tools(*specs), stream=True
        )
        for chunk in stream:
            for d in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                entry = calls.setdefault(d.index, ["", "", ""])
                entry[0] = d.id or entry[0]
                entry[1] += (d.function.name or "") if d.function else ""
                entry[2] += (d.function.arguments or "") if d.function else ""
        return [(i, n, json.loads(a)) for i, n, a in (calls[k] for k in sorted(calls))]

    def image(self, dep: str) -> str:
        content = [
            {"type": "text", "text": "what is this"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_1PX}"}},
        ]
        return (
            self._create(dep, [{"role": "user", "content": content}]).choices[0].message.content
            or ""
        )

    def json_output(self, dep: str) -> dict[str, Any]:
        fmt = {"type": "json_schema", "json_schema": {"name": "answer", "schema": ANSWER_SCHEMA}}
        # Room and greediness so a small local model closes its JSON within the token limit.
        message = (
            self._create(
                dep,
                [{"role": "user", "content": "answer"}],
                response_format=fmt,
                max_tokens=256,
                temperature=0,
            )
            .choices[0]
            .message
        )
        answer: dict[str, Any] = json.loads(message.content or "")
        return answer

    def usage(self, dep: str, stream: bool) -> tuple[int, int]:
        messages = [{"role": "user", "content": "count these words please"}]
        if stream:
            chunks = list(
                self._create(dep, messages, stream=True, stream_options={"include_usage": True})
            )
            usage = chunks[-1].usage
        else:
            usage = self._create(dep, messages).usage
        return usage.prompt_tokens, usage.completion_tokens

    def error(self, dep: str, stream: bool) -> tuple[int, dict[str, str]]:
        try:
            result = self._create(dep, [{"role": "user", "content": "hi"}], stream=stream)
            if stream:
                list(result)
        except openai.APIStatusError as exc:
            return exc.status_code, dict(exc.response.headers)
        except openai.APIError:
            return -1, {}  # an in-stream error event
        return 200, {}


class AnthropicDriver:
    name = "anthropic-sdk"

    def __init__(self, base_url: str) -> None:
        self.client = anthropic.Anthropic(base_url=base_url, api_key="x", max_retries=0, timeout=60)

    def _create(self, dep: str, messages: Sequence[Mapping[str, Any]], **kw: Any) -> Any:
        kw.setdefault("max_tokens", 64)
        # Plain JSON-shaped messages handed to the SDK's TypedDicts, as in OpenAIDriver._create.
        return self.client.messages.create(model=dep, messages=messages, **kw)  # type: ignore[arg-type]

    @staticmethod
    def _text(message: Any) -> str:
        return "".join(b.text for b in message.content if b.type == "text")

    def text(self, dep: str, user: str, system: str | None = None) -> str:
        kw = {"system": system} if system else {}
        return self._text(self._create(dep, [{"role": "user", "content": user}], **kw))

    def multi_turn(self, dep: str) -> str:
        messages = [
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "echo: first question"},
            {"role": "user", "content": "second question"},
        ]
        return self._text(self._create(dep, messages))

    @staticmethod
    def _tools(*specs: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {"name": s["name"], "description": s["description"], "input_schema": s["schema"]}
            for s in specs
        ]

    def tool_calls(self, dep: str, *specs: dict[str, Any]) -> list[Call]:
        msg = self._create(
            dep, [{"role": "user", "content": "weather?"}], tools=self._tools(*specs)
        )
        return [(b.id, b.name, dict(b.input)) for b in msg.content if b.type == "tool_use"]

    def tool_round_trip(self, dep: str) -> str:
        messages: list[dict[str, Any]] = [{"role": "user", "content": "weather in Paris?"}]
        first = self._create(dep, messages, tools=self._tools(WEATHER))
        use = next(b for b in first.content if b.type == "tool_use")
        messages.append(
            {
                "role": "assistant",
                "content": [b.model_dump(exclude_none=True) for b in first.content],
            }
        )
        messages.append(
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}],
            }
        )
        return self._text(self._create(dep, messages, tools=self._tools(WEATHER)))

    def stream_text(self, dep: str, user: str) -> str:
        with self.client.messages.stream(
            model=dep, max_tokens=64, messages=[{"role": "user", "content": user}]
        ) as s:
            return "".join(s.text_stream)

    def stream_tool_calls(self, dep: str, *specs: dict[str, Any]) -> list[Call]:
        with self.client.messages.stream(
            model=dep,
            max_tokens=64,
            messages=[{"role": "user", "content": "weather?"}],
            tools=self._tools(*specs),  # type: ignore[arg-type]
        ) as s:
            final = s.get_final_message()
        return [(b.id, b.name, dict(b.input)) for b in final.content if b.type == "tool_use"]

    def image(self, dep: str) -> str:
        content = [
            {"type": "text", "text": "what is this"},
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": PNG_1PX},
            },
        ]
        return self._text(self._create(dep, [{"role": "user", "content": content}]))

    def json_output(self, dep: str) -> dict[str, Any]:
        fmt = {"format": {"type": "json_schema", "schema": ANSWER_SCHEMA}}
        msg = self._create(
            dep,
            [{"role": "user", "content": "answer"}],
            max_tokens=256,
            extra_body={"output_config": fmt, "temperature": 0},
        )
        answer: dict[str, Any] = json.loads(self._text(msg))
        return answer

    def usage(self, dep: str, stream: bool) -> tuple[int, int]:
        messages: list[MessageParam] = [{"role": "user", "content": "count these words please"}]
        if stream:
            with self.client.messages.stream(model=dep, max_tokens=64, messages=messages) as s:
                u = s.get_final_message().usage
        else:
            u = self._create(dep, messages).usage
        cached = (u.cache_read_input_tokens or 0) + (u.cache_creation_input_tokens or 0)
        return u.input_tokens + cached, u.output_tokens

    def error(self, dep: str, stream: bool) -> tuple[int, dict[str, str]]:
        try:
            if stream:
                with self.client.messages.stream(
                    model=dep, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
                ) as s:
                    s.get_final_message()
            else:
                self._create(dep, [{"role": "user", "content": "hi"}])
        except anthropic.APIStatusError as exc:
            if stream and exc.status_code == 200:
                return -1, {}  # the SDK reports an in-stream error event with the 200 response
            return exc.status_code, dict(exc.response.headers)
        except anthropic.APIError:
            return -1, {}
        return 200, {}
