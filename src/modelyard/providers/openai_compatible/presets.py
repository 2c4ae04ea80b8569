"""Presets: what differs between vendors that speak the OpenAI API.

A new OpenAI-compatible vendor is one entry here (plus catalog facts), nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Preset:
    type: str
    base_url: str | None
    key_required: bool
    key_env: str = "API_KEY"
    # Newer OpenAI models reject ``max_tokens``; most other servers only know ``max_tokens``.
    max_tokens_field: str = "max_tokens"
    # Only OpenAI knows the ``developer`` role; elsewhere it is sent as ``system``.
    developer_role: bool = False
    # Whether ``stream_options.include_usage`` is accepted (we always want usage for metering).
    stream_usage_option: bool = True
    # The name of the sampling seed field (Mistral calls it ``random_seed``).
    seed_field: str = "seed"
    # Mistral accepts only tool-call ids of 9 letters and digits; others are mapped to such ids.
    short_tool_ids: bool = False
    # Annotation fields the vendor rejects as unknown; they carry no meaning for generation.
    omit_fields: tuple[str, ...] = ()
    # xAI counts reasoning tokens outside ``completion_tokens``; core output includes them.
    reasoning_outside_completion: bool = False
    # An assistant message's ``refusal`` (a structured-outputs refusal in the history) is
    # OpenAI's own field; vendors that check messages strictly reject it as unknown, so
    # elsewhere it is sent as the message's text.
    refusal_field: bool = False


_LIST = [
    Preset("openai_compatible", None, False),
    Preset(
        "openai",
        "https://api.openai.com/v1",
        True,
        "OPENAI_API_KEY",
        max_tokens_field="max_completion_tokens",
        developer_role=True,
        refusal_field=True,
    ),
    Preset("xai", "https://api.x.ai/v1", True, "XAI_API_KEY", reasoning_outside_completion=True),
    Preset("deepseek", "https://api.deepseek.com/v1", True, "DEEPSEEK_API_KEY"),
    # Mistral reports usage in the last chunk unasked and rejects unknown stream options.
    Preset(
        "mistral",
        "https://api.mistral.ai/v1",
        True,
        "MISTRAL_API_KEY",
        stream_usage_option=False,
        seed_field="random_seed",
        short_tool_ids=True,
        omit_fields=("user", "metadata"),
    ),
    Preset("groq", "https://api.groq.com/openai/v1", True, "GROQ_API_KEY"),
    Preset("together", "https://api.together.xyz/v1", True, "TOGETHER_API_KEY"),
    Preset("fireworks", "https://api.fireworks.ai/inference/v1", True, "FIREWORKS_API_KEY"),
    Preset("openrouter", "https://openrouter.ai/api/v1", True, "OPENROUTER_API_KEY"),
    Preset("ollama", "http://127.0.0.1:11434/v1", False),
    Preset("vllm", "http://127.0.0.1:8000/v1", False),
    # Azure takes max_completion_tokens and stream usage from api-version 2024-10-21 on.
    Preset(
        "azure_openai",
        None,
        True,
        "AZURE_OPENAI_API_KEY",
        max_tokens_field="max_completion_tokens",
        refusal_field=True,
    ),
    # The embedded llama.cpp runtime; its base_url is set by the supervisor at start.
    Preset("local", None, False),
]

PRESETS: dict[str, Preset] = {p.type: p for p in _LIST}
