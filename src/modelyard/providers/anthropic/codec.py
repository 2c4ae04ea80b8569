"""Build Messages API requests (``anthropic-version: 2023-06-01``) from core chat requests.

Responses, streams and errors are parsed in ``response``, ``stream`` and ``errors``; the adapter
does the I/O. Decisions where the mapping is lossy:

* ``max_tokens`` is required upstream. When the client sends none, ``DEFAULT_MAX_TOKENS``
  (4096, or the provider option ``default_max_tokens``) is sent, plus the thinking budget when
  extended thinking is on, so that thinking never eats the whole answer.
* JSON output (``response_format``): with the default ``structured_output: tool`` the schema
  becomes the input schema of one extra tool (``providers.json_tool``) the model is made to
  call; its input is returned as the answer's JSON text and the tool never reaches the client.
  This works on every Claude model with tool use, but cannot be combined with extended thinking
  (the API forbids forced tool use there). ``structured_output: native`` sends
  ``output_config.format`` instead (Claude 4.5 and later); ``json_object`` always uses the tool.
* ``reasoning_effort`` becomes ``thinking: {type: enabled, budget_tokens}`` (``EFFORT_BUDGETS``);
  a client's own ``thinking`` object wins and is sent unchanged. Enabled thinking is left out of
  a request that continues a tool-use turn whose signed thinking block did not come back (the
  API would refuse it: clients of dialects without signatures cannot send it back).
* Prompt caching: a client's top-level ``cache_control`` (``{"type": "ephemeral"}``, optional
  ``ttl``), sent as an extra field, is passed through; the API then puts the breakpoint on the
  last cacheable block, which caches the system prompt, tools and history. Breakpoints on
  blocks, system blocks and tools (``CacheMark``) go out as their ``cache_control``.
* Mid-conversation system messages stay in place only when the client named the
  ``mid-conversation-system-*`` beta (``MID_SYSTEM_BETA``) and the adapter forwards it; else they
  are hoisted into ``system``.
* Server tools (``ToolSpec.native``) go out as the client wrote them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from modelyard.core.chat import ChatRequest, NamedToolChoice, ResponseFormat, ToolSpec
from modelyard.core.errors import InvalidRequest
from modelyard.providers.anthropic import params
from modelyard.providers.anthropic.messages import cache_control, convert_messages
from modelyard.providers.base import encode_body
from modelyard.providers.extras import native_tool
from modelyard.providers.json_tool import DESCRIPTION as JSON_TOOL_DESCRIPTION
from modelyard.providers.json_tool import (
    client_demands_a_call,
    client_tools_in_play,
    object_schema,
)
from modelyard.providers.json_tool import tool_name as json_tool_name

DEFAULT_MAX_TOKENS = 4096
MID_SYSTEM_BETA = "mid-conversation-system-"
# Server tools written in these dialects run here.
NATIVE = ("anthropic",)
API = "Messages API"
MIN_THINKING_BUDGET = 1024  # the API's floor for budget_tokens
EFFORT_BUDGETS = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384, "xhigh": 32768}
StructuredOutput = Literal["tool", "native"]


@dataclass(frozen=True, slots=True)
class BuildOptions:
    provider: str
    default_max_tokens: int = DEFAULT_MAX_TOKENS
    structured_output: StructuredOutput = "tool"


def sends_mid_system(betas: tuple[str, ...]) -> bool:
    """Whether system turns may stay inside ``messages`` (the betas that will be sent)."""
    return any(beta.startswith(MID_SYSTEM_BETA) for beta in betas)


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """The body to send, and the synthetic JSON-answer tool to fold back into text (if any)."""

    body: dict[str, Any]
    json_tool: str | None = None

    def encode(self) -> bytes:
        return encode_body(self.body)


def build_request(
    request: ChatRequest,
    model: str,
    options: BuildOptions,
    *,
    stream: bool,
    betas: tuple[str, ...] = (),
) -> UpstreamRequest:
    """The body for ``request``; ``betas`` are the ones the request will be sent with."""
    provider = options.provider
    params.check_core_fields(request, provider)
    body = params.passthrough_extras(request, provider)
    mid_system = sends_mid_system(betas)
    system, turns = convert_messages(request.messages, provider, mid_system=mid_system)
    body["model"] = model
    body["messages"] = turns
    if system:
        body["system"] = system
    _sampling(body, request)
    budget = _thinking(body, request, provider)
    if budget is not None and _continues_unsigned_tool_use(turns):
        # The API refuses enabled thinking when the tool-use turn being continued lost its signed
        # thinking block (clients of dialects without signatures); that turn goes on without.
        del body["thinking"]
        budget = None
    body["max_tokens"] = _max_tokens(request, options, budget)
    _tools(body, request, provider)
    json_tool = _response_format(body, request, options, thinking=budget is not None)
    if stream:
        body["stream"] = True
    return UpstreamRequest(body, json_tool)


def _sampling(body: dict[str, Any], r: ChatRequest) -> None:
    if r.temperature is not None:
        body["temperature"] = r.temperature
    if r.top_p is not None:
        body["top_p"] = r.top_p
    if r.stop:
        body["stop_sequences"] = list(r.stop)
    user = params.user_id(r)
    if user is not None:
        body["metadata"] = {"user_id": user}


def _thinking(body: dict[str, Any], r: ChatRequest, provider: str) -> int | None:
    """Set ``thinking``; the budget in tokens when thinking is enabled with one."""
    own = body.get("thinking")
    if isinstance(own, Mapping):
        budget = own.get("budget_tokens")
        return budget if own.get("type") == "enabled" and isinstance(budget, int) else None
    effort = r.extra.get("reasoning_effort")
    if effort is None or effort == "none":
        return None
    if effort not in EFFORT_BUDGETS:
        raise InvalidRequest(
            f"reasoning_effort: must be one of none, {', '.join(EFFORT_BUDGETS)}; got {effort!r}",
            param="reasoning_effort",
        )
    budget = EFFORT_BUDGETS[effort]
    if r.max_tokens is not None:
        # Thinking counts toward max_tokens: keep at least half of it for the answer.
        budget = min(budget, r.max_tokens // 2)
        if budget < MIN_THINKING_BUDGET:
            raise InvalidRequest(
                f"max_tokens: provider {provider!r} needs max_tokens of at least "
                f"{2 * MIN_THINKING_BUDGET} to think (reasoning_effort {effort!r})",
                param="max_tokens",
            )
    body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    return budget


def _continues_unsigned_tool_use(turns: list[dict[str, Any]]) -> bool:
    if len(turns) < 2 or turns[-1]["role"] != "user" or turns[-2]["role"] != "assistant":
        return False
    if not any(block["type"] == "tool_result" for block in turns[-1]["content"]):
        return False
    blocks = turns[-2]["content"]
    return blocks[0]["type"] not in ("thinking", "redacted_thinking")


def _max_tokens(r: ChatRequest, options: BuildOptions, budget: int | None) -> int:
    if r.max_tokens is not None:
        return r.max_tokens
    return options.default_max_tokens + (budget or 0)


def _tools(body: dict[str, Any], r: ChatRequest, provider: str) -> None:
    if r.tools:
        body["tools"] = [
            tool_json(t) if t.native is None else native_tool(r, i, NATIVE, provider, API)
            for i, t in enumerate(r.tools)
        ]
    choice = _tool_choice(r, provider)
    if choice is not None:
        body["tool_choice"] = choice


def tool_json(tool: ToolSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tool.name}
    if tool.description:
        out["description"] = tool.description
    out["input_schema"] = (
        dict(tool.parameters) if tool.parameters else {"type": "object", "properties": {}}
    )
    if tool.strict:
        out["strict"] = True
    if tool.cache is not None:
        out["cache_control"] = cache_control(tool.cache)
    return out


def _tool_choice(r: ChatRequest, provider: str) -> dict[str, Any] | None:
    choice = r.tool_choice
    if not r.tools:
        if choice == "required" or isinstance(choice, NamedToolChoice):
            raise InvalidRequest(
                f"tool_choice: provider {provider!r} needs tools to choose from",
                param="tool_choice",
            )
        return None
    if choice == "none":
        return {"type": "none"}  # this type takes no disable_parallel_tool_use
    if isinstance(choice, NamedToolChoice):
        out: dict[str, Any] = {"type": "tool", "name": choice.name}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "auto" or r.parallel_tool_calls is False:
        out = {"type": "auto"}
    else:
        return None
    if r.parallel_tool_calls is False:
        out["disable_parallel_tool_use"] = True
    return out


def _response_format(
    body: dict[str, Any], r: ChatRequest, options: BuildOptions, *, thinking: bool
) -> str | None:
    fmt = r.response_format
    if fmt is None or fmt.kind == "text":
        return None
    schema = object_schema(fmt, options.provider)
    if fmt.kind == "json_schema" and options.structured_output == "native":
        config = body.get("output_config")
        merged = dict(config) if isinstance(config, Mapping) else {}
        merged["format"] = {"type": "json_schema", "schema": schema}
        body["output_config"] = merged
        return None
    if client_demands_a_call(r):
        return None  # no answer text is coming
    if thinking:
        raise InvalidRequest(
            f"response_format: provider {options.provider!r} answers in JSON through forced "
            "tool use, which the API does not allow together with extended thinking; drop "
            "one of them (or set the provider option structured_output: native)",
            param="response_format",
        )
    return _add_json_tool(body, r, fmt, schema)


def _add_json_tool(
    body: dict[str, Any], r: ChatRequest, fmt: ResponseFormat, schema: dict[str, Any]
) -> str:
    tools: list[dict[str, Any]] = body.get("tools", [])
    name = json_tool_name(fmt, (t.get("name") for t in tools))
    tools.append({"name": name, "description": JSON_TOOL_DESCRIPTION, "input_schema": schema})
    body["tools"] = tools
    client_tools = client_tools_in_play(r)
    choice: dict[str, Any] = {"type": "any"} if client_tools else {"type": "tool", "name": name}
    if not client_tools or r.parallel_tool_calls is False:
        choice["disable_parallel_tool_use"] = True
    body["tool_choice"] = choice
    return name
