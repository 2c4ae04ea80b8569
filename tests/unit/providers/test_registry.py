"""Provider types through the one plugin loader, and their typed options in the config schema."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from modelyard.config import ConfigError
from modelyard.config.loader import settings_from_data
from modelyard.config.schema import Settings
from modelyard.core.plugins import PluginError
from modelyard.providers.anthropic import AnthropicProvider
from modelyard.providers.base import ProviderSettings
from modelyard.providers.registry import check_settings, provider_types
from modelyard.services.build import build_components


@dataclass
class Entry:
    name: str
    value: str
    target: object = None
    error: Exception | None = None

    def load(self) -> object:
        if self.error is not None:
            raise self.error
        return self.target


BROKEN = Entry("broken", "vendor_pkg.adapter:Provider", error=ImportError("no module vendor_pkg"))


def test_a_broken_plugin_costs_nothing_until_configured() -> None:
    known = provider_types(entries=[BROKEN])
    assert "broken" in known and "anthropic" in known
    assert known["anthropic"].options is AnthropicProvider.Options
    problem = check_settings(ProviderSettings("p", "broken"), known)
    assert problem is not None and problem[0] == "type"
    assert "vendor_pkg.adapter:Provider" in problem[1] and "no module vendor_pkg" in problem[1]


def test_a_plugin_must_meet_the_contract() -> None:
    known = provider_types(entries=[Entry("odd", "pkg:factory", target=lambda s, t: None)])
    with pytest.raises(PluginError, match="is not a Provider subclass"):
        known.get("odd")


def test_a_plugin_is_loaded_once_and_named_like_a_builtin_is_refused() -> None:
    loads: list[str] = []

    class Counting(Entry):
        def load(self) -> object:
            loads.append(self.name)
            return AnthropicProvider

    known = provider_types(entries=[Counting("claude2", "pkg:P"), Counting("gemini", "pkg:G")])
    assert known.get("claude2").options is AnthropicProvider.Options
    known.get("claude2")
    assert loads == ["claude2"]
    with pytest.raises(PluginError, match="'gemini' is built in"):
        known.get("gemini")


def test_options_are_in_the_config_schema_per_type() -> None:
    schema = Settings.model_json_schema()
    rules = schema["$defs"]["ProviderConfig"]["allOf"]
    by_type = {
        name: rule["then"]["properties"]["options"]
        for rule in rules
        for name in rule["if"]["properties"]["type"]["enum"]
    }
    assert by_type["anthropic"]["properties"]["structured_output"]["enum"] == ["tool", "native"]
    assert by_type["gemini"]["properties"]["thinking"]["default"] == "auto"
    assert by_type["bedrock"]["additionalProperties"] is False
    assert by_type["deepseek"]["properties"] == {}


def test_option_errors_name_their_path() -> None:
    data = {
        "providers": {
            "claude": {
                "type": "anthropic",
                "api_key": "k",
                "options": {"default_max_tokens": 0},
            }
        }
    }
    with pytest.raises(ConfigError) as info:
        build_components(settings_from_data(data), None)
    assert [str(i) for i in info.value.issues] == [
        "providers.claude.options.default_max_tokens: Input should be greater than or equal "
        "to 1; got 0"
    ]
