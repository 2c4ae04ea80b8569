"""Provider types by name: the built-ins plus third-party adapters from the ``modelyard.providers``
entry-point group (loaded through ``core.plugins``, only when a config names them).

A third-party package registers ``[project.entry-points."modelyard.providers"] mytype =
"pkg.module:MyProvider"``, where ``MyProvider`` subclasses ``providers.base.Provider`` (usually
``providers.http_adapter.HttpAdapter``) and declares its ``Options`` model; see
``docs/plugins.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from pydantic import ValidationError

from modelyard.core.plugins import EntryPointLike, PluginError, PluginKind, Plugins
from modelyard.providers.anthropic import AnthropicProvider
from modelyard.providers.base import Provider, ProviderOptions, ProviderSettings
from modelyard.providers.bedrock.options import BedrockOptions
from modelyard.providers.gemini import GeminiProvider
from modelyard.providers.openai_compatible.adapter import OpenAICompatibleProvider
from modelyard.providers.openai_compatible.azure import AzureOpenAIProvider
from modelyard.providers.openai_compatible.presets import PRESETS
from modelyard.providers.transport import Transport

ENTRY_POINT_GROUP = "modelyard.providers"


@dataclass(frozen=True, slots=True)
class ProviderType:
    """One provider type: its options, the key variable a config usually names, and its class,
    resolved on first use (Bedrock's imports botocore, which a gateway without it never needs)."""

    options: type[ProviderOptions]
    key_env: str | None
    resolve: Callable[[], type[Provider]]

    @classmethod
    def of(cls, provider: type[Provider]) -> ProviderType:
        return cls(provider.Options, provider.KEY_ENV, lambda: provider)

    def __call__(self, settings: ProviderSettings, transport: Transport) -> Provider:
        return self.resolve()(settings, transport)


# Our provider types as the GenAI semantic conventions name providers (gen_ai.provider.name);
# a type not listed is named by itself.
_GENAI_NAMES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "openai": "openai",
        "azure_openai": "azure.ai.openai",
        "anthropic": "anthropic",
        "gemini": "gcp.gemini",
        "bedrock": "aws.bedrock",
        "deepseek": "deepseek",
        "mistral": "mistral_ai",
        "xai": "x_ai",
        "groq": "groq",
        "perplexity": "perplexity",
    }
)


def genai_provider_name(provider_type: str) -> str:
    """The ``gen_ai.provider.name`` of a provider type."""
    return _GENAI_NAMES.get(provider_type, provider_type)


def _bedrock() -> type[Provider]:
    from modelyard.providers.bedrock.adapter import BedrockProvider

    return BedrockProvider


def _accept(obj: object) -> ProviderType | None:
    if isinstance(obj, ProviderType):
        return obj
    if isinstance(obj, type) and issubclass(obj, Provider):
        return ProviderType.of(obj)
    return None


PROVIDERS = PluginKind(
    ENTRY_POINT_GROUP, "provider type", "a Provider subclass (or a ProviderType)", _accept
)


def builtin_types() -> dict[str, ProviderType]:
    types = {name: ProviderType.of(OpenAICompatibleProvider) for name in PRESETS}
    types["azure_openai"] = ProviderType.of(AzureOpenAIProvider)
    types["anthropic"] = ProviderType.of(AnthropicProvider)
    types["gemini"] = ProviderType.of(GeminiProvider)
    types["bedrock"] = ProviderType(BedrockOptions, None, _bedrock)
    return types


def provider_types(entries: Iterable[EntryPointLike] | None = None) -> Plugins[ProviderType]:
    """Every provider type by name (``entries`` replaces the installed entry points in tests)."""
    return Plugins(PROVIDERS, builtin_types(), entries)


def options_models() -> Mapping[str, type[ProviderOptions]]:
    """The built-in types' options models, for the config's JSON schema."""
    return {name: kind.options for name, kind in builtin_types().items()}


def check_settings(
    settings: ProviderSettings, known: Plugins[ProviderType]
) -> tuple[str, str] | None:
    """The field at fault and a message fit for a config error, or None."""
    try:
        kind = known.get(settings.type)
    except PluginError as exc:
        return "type", str(exc)
    problem = _check_options(kind.options, settings.options)
    if problem is not None:
        return problem
    preset = PRESETS.get(settings.type)
    if preset is None:
        if kind.key_env and not settings.api_key:
            return "api_key", f"type {settings.type!r} needs an api_key, e.g. env::{kind.key_env}"
        return None
    if preset.base_url is None and settings.base_url is None:
        return "base_url", f"type {settings.type!r} needs a base_url"
    if preset.key_required and not settings.api_key:
        return "api_key", f"type {settings.type!r} needs an api_key, e.g. env::{preset.key_env}"
    return None


def _check_options(
    model: type[ProviderOptions], options: Mapping[str, object]
) -> tuple[str, str] | None:
    try:
        model.model_validate(options)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        if first["type"] == "extra_forbidden":
            accepted = ", ".join(sorted(model.model_fields)) or "none"
            return f"options.{where}", f"unknown option {where!r}; accepted: {accepted}"
        return f"options.{where}", f"{first['msg']}; got {first.get('input')!r}"
    return None
