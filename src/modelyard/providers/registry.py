"""Provider types by name: the built-ins plus third-party adapters from an entry-point group.

A third-party package registers ``[project.entry-points."modelyard.providers"] mytype =
"pkg.module:factory"``, where ``factory(settings, transport) -> Provider``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib.metadata import entry_points

from modelyard.providers.anthropic import AnthropicProvider
from modelyard.providers.base import Provider, ProviderSettings
from modelyard.providers.gemini import GeminiProvider
from modelyard.providers.openai_compatible.adapter import OpenAICompatibleProvider
from modelyard.providers.openai_compatible.azure import AzureOpenAIProvider
from modelyard.providers.openai_compatible.presets import PRESETS
from modelyard.providers.transport import Transport

ProviderFactory = Callable[[ProviderSettings, Transport], Provider]
ENTRY_POINT_GROUP = "modelyard.providers"


def _builtin() -> dict[str, ProviderFactory]:
    types: dict[str, ProviderFactory] = {name: OpenAICompatibleProvider for name in PRESETS}
    types["azure_openai"] = AzureOpenAIProvider
    types["anthropic"] = AnthropicProvider
    types["gemini"] = GeminiProvider
    types["bedrock"] = _bedrock
    return types


class _LazyBedrock:
    """Bedrock's factory: botocore is large, so a gateway without Bedrock never imports it."""

    def __call__(self, settings: ProviderSettings, transport: Transport) -> Provider:
        return self._cls()(settings, transport)

    def check_options(self, options: Mapping[str, object]) -> list[tuple[str, str]]:
        return self._cls().check_options(options)

    @staticmethod
    def _cls() -> type[Provider]:
        from modelyard.providers.bedrock import BedrockProvider

        return BedrockProvider


_bedrock = _LazyBedrock()


def provider_types() -> dict[str, ProviderFactory]:
    types = _builtin()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in types:
            types[ep.name] = ep.load()
    return types


def check_settings(
    settings: ProviderSettings, known: dict[str, ProviderFactory]
) -> tuple[str, str] | None:
    """The field at fault and a message fit for a config error, or None."""
    if settings.type not in known:
        return "type", f"unknown provider type {settings.type!r}; known: {', '.join(sorted(known))}"
    check = getattr(known[settings.type], "check_options", None)
    problems = check(settings.options) if check is not None else []
    if problems:
        return f"options.{problems[0][0]}", problems[0][1]
    preset = PRESETS.get(settings.type)
    if preset is None:
        key_env = getattr(known[settings.type], "KEY_ENV", None)
        if key_env and not settings.api_key:
            return "api_key", f"type {settings.type!r} needs an api_key, e.g. env::{key_env}"
        return None
    if preset.base_url is None and settings.base_url is None:
        return "base_url", f"type {settings.type!r} needs a base_url"
    if preset.key_required and not settings.api_key:
        return "api_key", f"type {settings.type!r} needs an api_key, e.g. env::{preset.key_env}"
    return None
