"""Build Converse / ConverseStream request bodies from core chat requests.

Both operations take the same body (the model id travels in the URL path). Responses, streams
and errors are parsed in ``response``, ``stream`` and ``errors``. Decisions where the mapping is
lossy:

* ``tool_choice``: ``auto`` → ``{auto: {}}``, ``required`` → ``{any: {}}``, a named tool →
  ``{tool: {name}}`` (Converse documents ``any`` and ``tool`` for Claude and Nova models only;
  others answer 400). Converse has no ``none``: the tools are simply not offered. But Converse
  insists on a ``toolConfig`` whenever the turns hold ``toolUse``/``toolResult`` blocks, so then
  the tools stay (or, if the request offers none, the tools named in the history are declared
  with an open object schema) and the model may still call one: ``none`` cannot be enforced
  there. ``parallel_tool_calls`` has no counterpart and is not sent.
* JSON output (``response_format``): with the default ``structured_output: tool``, the schema
  becomes the input schema of one extra tool (``providers.json_tool``) the model is forced
  to call; its input comes back as the answer's text and the tool never reaches the client.
  ``structured_output: native`` sends ``outputConfig.textFormat`` (a JSON schema, which only
  newer models accept); ``json_object`` always uses the tool, with an open object schema.
* ``reasoning_effort`` becomes ``outputConfig.effort`` (``minimal`` → ``low``).
* ``metadata`` and ``user`` become ``requestMetadata`` (visible in invocation logs only).
* With ``stop`` sequences, ``additionalModelResponseFieldPaths`` asks for ``/stop_sequence``
  (with the client's own paths), so that an answer cut by one names it as Claude does (Converse
  ignores a path the model's answer lacks).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from modelyard.core.chat import ChatRequest, NamedToolChoice, ToolSpec
from modelyard.core.errors import InvalidRequest
from modelyard.providers.base import encode_body
from modelyard.providers.bedrock import params
from modelyard.providers.bedrock.messages import Converted, cache_point, convert_messages
from modelyard.providers.extras import refuse_native_tools
from modelyard.providers.json_tool import DESCRIPTION as JSON_TOOL_DESCRIPTION
from modelyard.providers.json_tool import (
    client_demands_a_call,
    client_tools_in_play,
    object_schema,
)
from modelyard.providers.json_tool import tool_name as json_tool_name

StructuredOutput = Literal["tool", "native"]
_OPEN_OBJECT: dict[str, Any] = {"type": "object"}
# Where a Claude answer names the stop sequence that cut it (a JSON pointer into its answer).
STOP_SEQUENCE_PATH = "/stop_sequence"


@dataclass(frozen=True, slots=True)
class BuildOptions:
    provider: str
    structured_output: StructuredOutput = "tool"


@dataclass(frozen=True, slots=True)
class ConverseRequest:
    """The body to send, and the synthetic JSON-answer tool to fold back into text (if any)."""

    body: dict[str, Any]
    json_tool: str | None = None

    def encode(self) -> bytes:
        return encode_body(self.body)


def build_request(request: ChatRequest, model: str, options: BuildOptions) -> ConverseRequest:
    provider = options.provider
    params.check_core_fields(request, provider)
    body = params.passthrough_extras(request, provider)
    converted = convert_messages(request.messages, model)
    body["messages"] = converted.turns
    if converted.system:
        body["system"] = converted.system
    inference = _inference(request)
    if inference:
        body["inferenceConfig"] = inference
    if request.stop:
        _ask_for_stop_sequence(body)
    metadata = params.request_metadata(request)
    if metadata and "requestMetadata" not in body:
        body["requestMetadata"] = metadata
    effort = params.effort(request)
    if effort is not None:
        _output_config(body)["effort"] = effort
    tools, choice = _tools(request, converted, provider)
    json_tool = _response_format(body, request, options, tools)
    if json_tool is not None:
        choice = _json_choice(request, json_tool)
    if tools:
        config: dict[str, Any] = {"tools": tools}
        if choice is not None:
            config["toolChoice"] = choice
        body["toolConfig"] = config
    return ConverseRequest(body, json_tool)


def _inference(r: ChatRequest) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if r.max_tokens is not None:
        out["maxTokens"] = r.max_tokens
    if r.temperature is not None:
        out["temperature"] = r.temperature
    if r.top_p is not None:
        out["topP"] = r.top_p
    if r.stop:
        out["stopSequences"] = list(r.stop)
    return out


def _ask_for_stop_sequence(body: dict[str, Any]) -> None:
    paths = body.get("additionalModelResponseFieldPaths")
    own = list(paths) if isinstance(paths, list | tuple) else []
    if STOP_SEQUENCE_PATH not in own:
        body["additionalModelResponseFieldPaths"] = [*own, STOP_SEQUENCE_PATH]


def _output_config(body: dict[str, Any]) -> dict[str, Any]:
    current = body.get("outputConfig")
    config = dict(current) if isinstance(current, Mapping) else {}
    body["outputConfig"] = config
    return config


def tool_spec(
    name: str, description: str | None, schema: Mapping[str, Any] | None
) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name}
    if description:
        spec["description"] = description
    spec["inputSchema"] = {"json": dict(schema) if schema else {**_OPEN_OBJECT, "properties": {}}}
    return {"toolSpec": spec}


def _client_tool(tool: ToolSpec) -> dict[str, Any]:
    spec = tool_spec(tool.name, tool.description, tool.parameters)
    if tool.strict:
        spec["toolSpec"]["strict"] = True
    return spec


def _with_cache_points(tools: list[dict[str, Any]], specs: Sequence[ToolSpec]) -> None:
    """A ``cachePoint`` after each tool the client marked (Converse takes them in the list)."""
    for i in range(len(specs) - 1, -1, -1):
        if specs[i].cache is not None:
            tools.insert(i + 1, cache_point())


def _tools(
    r: ChatRequest, converted: Converted, provider: str
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The ``tools`` list and ``toolChoice`` for the client's own tools."""
    choice = r.tool_choice
    if not r.tools and (choice == "required" or isinstance(choice, NamedToolChoice)):
        raise InvalidRequest(
            f"tool_choice: provider {provider!r} needs tools to choose from", param="tool_choice"
        )
    refuse_native_tools(r, provider, "Bedrock Converse")
    tools = [_client_tool(t) for t in r.tools]
    _with_cache_points(tools, r.tools)
    if converted.has_tool_blocks and not tools:
        tools = [tool_spec(name, None, None) for name in converted.history_tools]
        return tools or [tool_spec("tool", None, None)], None
    if choice == "none":
        return ([], None) if not converted.has_tool_blocks else (tools, None)
    if isinstance(choice, NamedToolChoice):
        if choice.name not in {t.name for t in r.tools}:
            raise InvalidRequest(
                f"tool_choice: no tool named {choice.name!r} among the request's tools",
                param="tool_choice",
            )
        return tools, {"tool": {"name": choice.name}}
    if choice == "required":
        return tools, {"any": {}}
    if choice == "auto" and tools:
        return tools, {"auto": {}}
    return tools, None


def _response_format(
    body: dict[str, Any], r: ChatRequest, options: BuildOptions, tools: list[dict[str, Any]]
) -> str | None:
    """Ask for JSON; the name of the synthetic answer tool when a tool carries the answer."""
    fmt = r.response_format
    if fmt is None or fmt.kind == "text":
        return None
    if fmt.kind == "json_schema" and options.structured_output == "native":
        native = dict(fmt.schema) if fmt.schema else {**_OPEN_OBJECT}
        definition: dict[str, Any] = {"schema": encode_body(native).decode()}
        definition["name"] = fmt.name or "response"
        text_format = {"type": "json_schema", "structure": {"jsonSchema": definition}}
        _output_config(body)["textFormat"] = text_format
        return None
    if client_demands_a_call(r):
        return None  # no answer text is coming
    schema = object_schema(fmt, options.provider)
    name = json_tool_name(fmt, (t.get("toolSpec", {}).get("name") for t in tools))
    tools.append(tool_spec(name, JSON_TOOL_DESCRIPTION, schema))
    return name


def _json_choice(r: ChatRequest, json_tool: str) -> dict[str, Any]:
    # With tools of its own in play the model may call those or answer; "any" leaves it both.
    return {"any": {}} if client_tools_in_play(r) else {"tool": {"name": json_tool}}
