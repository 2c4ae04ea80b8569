"""The guard plugin example in docs/guardrails.md works as printed, through the entry-point
mechanism of ``core.plugins``."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import pytest

from modelyard.core.plugins import PluginError
from modelyard.guardrails.engine import Vault, Verdicts, screen
from modelyard.guardrails.policy import GuardSpec, PolicyError, build_policy
from modelyard.guardrails.registry import guard_kinds

DOC = Path(__file__).parents[3] / "docs" / "guardrails.md"


def _example() -> ModuleType:
    block = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)[0]
    module = ModuleType("acme_guards")
    exec(compile(block, str(DOC), "exec"), module.__dict__)  # our own docs
    return module


class _Entry:
    def __init__(self, name: str, target: object) -> None:
        self.name = name
        self.value = f"acme_guards:{name}"
        self._target = target

    def load(self) -> object:
        return self._target


def test_the_documented_plugin_redacts_through_a_policy() -> None:
    kinds = guard_kinds([_Entry("ticket_ids", _example().ticket_ids)])
    spec = GuardSpec("ticket_ids", ("input",), "redact", settings={"prefix": "ACME"})
    policy = build_policy("p", [spec], False, kinds)
    out = screen(policy.guards, "input", "see ACME-1234 and ACME-99", Vault(), Verdicts())
    assert out == "see [TICKET_ID_1] and ACME-99"
    with pytest.raises(PolicyError, match=r"guards\[0\]\.settings: prefix"):
        build_policy(
            "p",
            [GuardSpec("ticket_ids", ("input",), "block", settings={"prefix": "-"})],
            False,
            kinds,
        )


def test_a_plugin_cannot_take_a_built_in_name_or_break_the_contract() -> None:
    kinds = guard_kinds([_Entry("pii", _example().ticket_ids), _Entry("broken", 42)])
    with pytest.raises(PluginError, match="built in"):
        kinds.get("pii")
    with pytest.raises(PolicyError, match=r"guards\[0\]\.kind"):
        build_policy("p", [GuardSpec("broken", ("input",), "flag")], False, kinds)
