from typing import Any

import pytest

from modelyard.config import ConfigError
from modelyard.config.loader import load_settings, settings_from_data
from modelyard.services.build import build_components


def _issues(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        build_components(settings_from_data(data), None)
    return [str(i) for i in info.value.issues]


def test_unknown_keys_name_path_and_accepted_keys():
    issues = _issues({"providers": {"x": {"type": "xai", "api_kye": "k"}}})
    assert issues == [
        "providers.x.api_kye: unknown key 'api_kye'; "
        "accepted: type, base_url, api_key, headers, timeouts, options"
    ]
    issues = _issues(
        {"deployments": {"d": {"targets": [{"provider": "local", "model": "m", "x": 1}]}}}
    )
    assert issues[0].startswith("deployments.d.targets[0].x: unknown key 'x'")


def test_unknown_provider_reference_lists_known():
    issues = _issues(
        {
            "local": {"enabled": False},
            "providers": {"grok": {"type": "xai", "api_key": "k"}},
            "deployments": {
                "chat": {
                    "targets": [
                        {"provider": "grok", "model": "a"},
                        {"provider": "grokk", "model": "b"},
                    ]
                }
            },
        }
    )
    assert issues == ["deployments.chat.targets[1].provider: unknown provider 'grokk'; known: grok"]


def test_unknown_provider_type_and_missing_key():
    issues = _issues({"providers": {"a": {"type": "grokk"}, "b": {"type": "openai"}}})
    assert issues[0].startswith("providers.a.type: unknown provider type 'grokk'; known: ")
    assert "xai" in issues[0]
    assert (
        issues[1] == "providers.b.api_key: type 'openai' needs an api_key, e.g. env::OPENAI_API_KEY"
    )


def test_secret_references(monkeypatch, tmp_path):
    monkeypatch.setenv("MY_KEY", "sekrit")
    keyfile = tmp_path / "k"
    keyfile.write_text("from-file\n")
    settings = settings_from_data(
        {
            "providers": {
                "a": {"type": "xai", "api_key": "env::MY_KEY"},
                "b": {"type": "xai", "api_key": f"file::{keyfile}"},
            }
        }
    )
    key_a, key_b = settings.providers["a"].api_key, settings.providers["b"].api_key
    assert key_a is not None and key_b is not None
    assert key_a.reveal() == "sekrit"
    assert key_b.reveal() == "from-file"
    assert "sekrit" not in repr(settings)
    monkeypatch.delenv("MY_KEY")
    with pytest.raises(ConfigError) as info:
        settings_from_data({"providers": {"a": {"type": "xai", "api_key": "env::MY_KEY"}}})
    assert (
        str(info.value.issues[0]) == "providers.a.api_key: environment variable MY_KEY is not set"
    )


def test_local_names_are_reserved():
    issues = _issues({"deployments": {"local": {"targets": [{"provider": "local", "model": "m"}]}}})
    assert issues == ["deployments.local: this name is taken by the embedded runtime"]


def test_default_settings_serve_the_embedded_model():
    table = build_components(load_settings(None), "http://127.0.0.1:1/v1").table
    assert sorted(table.names) == ["local", "smollm2-135m-instruct"]


def test_yaml_errors(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("providers: [1,\n")
    with pytest.raises(ConfigError) as info:
        load_settings(bad)
    assert "not valid YAML" in str(info.value)
    with pytest.raises(ConfigError):
        load_settings(tmp_path / "missing.yaml")


def test_names_sent_back_in_headers_must_fit_in_one(tmp_path):
    """Deployment, provider and local model names and target model ids come back in every
    answer's x-modelyard-* headers; one that a header cannot carry made every call a 500."""
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    target = {"provider": "local", "model": "m"}
    issues = _issues(
        {
            "deployments": {
                "chat": {"targets": [{**target, "model": "gpt\n4"}]},
                "other": {"targets": [{**target, "model": "モデル"}]},
            },
        }
    )
    assert len(issues) == 2, issues
    assert issues[0].startswith("deployments.chat.targets[0].model: ")
    assert "'gpt\\n4': a model id is sent back in a response header" in issues[0]
    assert issues[1].startswith("deployments.other.targets[0].model: 'モデル'")
    issues = _issues({"local": {"models": {"模型": {"path": str(gguf)}}}})
    assert issues == ["local.models.模型: names use letters, digits, . _ : / -"]
    # What vendors name their models still loads, Latin-1 text included.
    for model in ("gpt-4o-mini", "claude-3-5-sonnet@20240620", "models/gemini-1.5-pro", "café"):
        settings_from_data({"deployments": {"d": {"targets": [{**target, "model": model}]}}})
