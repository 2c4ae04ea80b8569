"""Services of the Responses API: the hosted-tools policy, and deployment specs that do not
change when the new ``hosted_tools`` setting is at its default."""

from __future__ import annotations

import pytest

from modelyard.config.schema import DeploymentConfig
from modelyard.core.errors import InvalidRequest
from modelyard.services.deployments import canonical_spec
from modelyard.services.responses import hosted_warnings

TARGETS = [{"provider": "p", "model": "m"}]


class _Table:
    def __init__(self, deployments: dict[str, object]) -> None:
        self._deployments = deployments

    def get(self, name: str) -> object:
        return self._deployments.get(name)


class _Pipeline:
    def __init__(self, policy: str) -> None:
        from modelyard.routing import Deployment, Target

        deployment = Deployment("d", (Target("p", "m"),), hosted_tools=policy)
        self.gateway = type("G", (), {"table": _Table({"d": deployment})})()


def test_hosted_tools_are_disclosed_by_default_and_refused_on_request():
    assert hosted_warnings(_Pipeline("omit"), "d", ()) == ()  # type: ignore[arg-type]
    warnings = hosted_warnings(_Pipeline("omit"), "d", ("web_search",))  # type: ignore[arg-type]
    assert "web_search" in warnings[0]
    with pytest.raises(InvalidRequest) as caught:
        hosted_warnings(_Pipeline("refuse"), "d", ("web_search", "mcp"))  # type: ignore[arg-type]
    assert caught.value.param == "tools" and "web_search, mcp" in caught.value.message


def test_the_default_hosted_tools_setting_leaves_recorded_specs_unchanged():
    plain = canonical_spec(DeploymentConfig.model_validate({"targets": TARGETS}))
    assert "hosted_tools" not in plain
    refusing = DeploymentConfig.model_validate({"targets": TARGETS, "hosted_tools": "refuse"})
    assert '"hosted_tools":"refuse"' in canonical_spec(refusing)
