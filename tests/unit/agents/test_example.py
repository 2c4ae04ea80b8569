"""``examples/agents.yaml``'s agent section is valid as shipped (its ``mcp_servers`` section
belongs to the MCP tools, checked by ``tests/integration/test_agents_example.py``)."""

from __future__ import annotations

from pathlib import Path

import yaml

from modelyard.config import ConfigError
from modelyard.config.schema import Settings
from modelyard.services.build import build_components

EXAMPLE = Path(__file__).parents[3] / "examples" / "agents.yaml"


def test_the_example_agent_is_valid_and_runs_on_a_served_deployment():
    raw = yaml.safe_load(EXAMPLE.read_text())
    if "mcp_servers" not in Settings.model_fields:
        raw.pop("mcp_servers")  # before the MCP tools' config section exists
    settings = Settings.model_validate(raw)
    agent = settings.agents["calc-agent"]
    assert agent.tools[0].type == "mcp" and agent.tools[0].server_label == "calc"
    components = build_components(settings, "http://127.0.0.1:1/v1")
    assert components.table.get(agent.deployment) is not None


def _issues(agents: dict[str, object]) -> list[str]:
    settings = Settings.model_validate(
        {
            "local": {"enabled": False},
            "deployments": {"d": {"targets": [{"provider": "local", "model": "m"}]}},
            "agents": agents,
        }
    )
    try:
        build_components(settings, None)
    except ConfigError as exc:
        return [issue.path for issue in exc.issues]
    return []


def test_an_agent_on_an_unserved_deployment_or_with_a_bad_name_is_a_config_error():
    assert _issues({"ok": {"deployment": "nowhere"}}) == ["agents.ok.deployment"]
    assert _issues({"bad/name": {"deployment": "d"}}) == ["agents.bad/name"]
