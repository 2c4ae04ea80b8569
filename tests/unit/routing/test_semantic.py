"""The rule-based ``semantic`` strategy: keywords, regexes, JSON-schema presence, similarity."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from modelyard.config.schema import DeploymentConfig
from modelyard.core.chat import ChatRequest, Message, ResponseFormat, TextPart
from modelyard.routing import BreakerSettings, Deployment, HealthBoard, PlanRequest, Router, Target
from modelyard.routing.semantic import SemanticRouting, SemanticRule

GENERAL, CODER, JSONER = Target("up", "general"), Target("up", "coder"), Target("up", "jsoner")
RULES = SemanticRouting(
    (
        SemanticRule.build("up/jsoner", json_schema=True),
        SemanticRule.build("up/coder", keywords=("Python",), regex=r"\bdef \w+\("),
        SemanticRule.build(
            "up/coder",
            examples=("write a function that sorts a list", "fix the bug in this code"),
            min_similarity=0.4,
        ),
    )
)
DEPLOYMENT = Deployment(
    "d", (GENERAL, CODER, JSONER), strategy="semantic", semantic=RULES
)  # fmt: skip


def _plan(text: str, schema: bool = False, opt_out: bool = False) -> tuple[list[Target], str]:
    fmt = ResponseFormat("json_schema", {"type": "object"}) if schema else None
    req = ChatRequest("d", [Message("user", (TextPart(text),))], response_format=fmt)
    notes: list[str] = []
    router = Router(HealthBoard(BreakerSettings(), 0.5), random.Random(0))
    plan = router.plan(PlanRequest(DEPLOYMENT, request=req, opt_out=opt_out, note=notes.append))
    return plan, notes[-1]


def test_each_kind_of_condition_picks_its_target_first() -> None:
    assert _plan("reply in JSON", schema=True) == (
        [JSONER, GENERAL, CODER],
        "semantic:0:json_schema",
    )
    assert _plan("how do I read a file in python?") == (
        [CODER, GENERAL, JSONER],
        "semantic:1:keyword",
    )
    assert _plan("why does def main(): fail") == ([CODER, GENERAL, JSONER], "semantic:1:regex")
    plan, note = _plan("please write a function that sorts my list")
    assert plan[0] is CODER and note.startswith("semantic:2:similar:")
    assert float(note.rsplit(":", 1)[1]) >= 0.4


def test_no_match_and_opt_out_keep_the_configured_order() -> None:
    assert _plan("tell me a story about a cat") == ([GENERAL, CODER, JSONER], "semantic:none")
    assert _plan("python", opt_out=True) == ([GENERAL, CODER, JSONER], "semantic:off")


def _config(rules: list[dict[str, object]]) -> DeploymentConfig:
    targets = [{"provider": "up", "model": "general"}, {"provider": "up", "model": "coder"}]
    return DeploymentConfig.model_validate(
        {"strategy": "semantic", "rules": rules, "targets": targets}
    )


def test_rules_are_checked_in_the_config() -> None:
    assert _config([{"target": "up/coder", "keywords": ["python"]}]).rules
    with pytest.raises(ValidationError, match="needs keywords, regex"):
        _config([{"target": "up/coder"}])
    with pytest.raises(ValidationError, match="regex does not compile"):
        _config([{"target": "up/coder", "regex": "("}])
    with pytest.raises(ValidationError, match=r"rules\[0\]\.target must be one of the targets"):
        _config([{"target": "up/other", "keywords": ["x"]}])
    with pytest.raises(ValidationError, match="go together"):
        DeploymentConfig.model_validate(
            {"strategy": "semantic", "targets": [{"provider": "up", "model": "general"}]}
        )
