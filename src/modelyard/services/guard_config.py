"""The config's guardrail policies, built and checked with the rest of the config."""

from __future__ import annotations

from collections.abc import Collection

from modelyard.config import ConfigIssue, Settings
from modelyard.config.guardrails import GuardConfig
from modelyard.guardrails.model import Policy
from modelyard.guardrails.policy import GuardSpec, Policies, PolicyError, build_policy
from modelyard.guardrails.registry import guard_kinds


def build_policies(
    settings: Settings, issues: list[ConfigIssue], deployments: Collection[str] | None = None
) -> Policies:
    """The config's policies, each guard's settings checked by its kind; problems are added to
    ``issues`` with their config path. With ``deployments``, a judge guard's deployment must
    be one of them."""
    cfg = settings.guardrails
    if not cfg.policies:
        return Policies()
    kinds = guard_kinds()
    built: dict[str, Policy] = {}
    for name, pcfg in cfg.policies.items():
        if deployments is not None:
            _judges_exist(name, pcfg.guards, deployments, issues)
        for n, g in enumerate(pcfg.guards):
            if g.kind == "json_schema" and g.phases != ["output"]:
                path = f"guardrails.policies.{name}.guards[{n}].phases"
                issues.append(ConfigIssue(path, "json_schema checks answers: phases [output]"))
        specs = [
            GuardSpec(g.kind, tuple(g.phases), g.action, g.name, dict(g.settings), g.window)
            for g in pcfg.guards
        ]
        try:
            built[name] = build_policy(name, specs, pcfg.reversible, kinds)
        except PolicyError as exc:
            message = str(exc).removeprefix(f"{exc.path}: ")
            issues.append(ConfigIssue(f"guardrails.policies.{name}.{exc.path}", message))
    return Policies(built, cfg.keys, cfg.projects, cfg.deployments, cfg.default)


def _judges_exist(
    policy: str, guards: list[GuardConfig], deployments: Collection[str], issues: list[ConfigIssue]
) -> None:
    for n, guard in enumerate(guards):
        calls = guard.kind in ("moderation", "topics")
        judge = guard.settings.get("deployment") if calls else None
        if isinstance(judge, str) and judge not in deployments:
            known = ", ".join(sorted(deployments)) or "none"
            issues.append(
                ConfigIssue(
                    f"guardrails.policies.{policy}.guards[{n}].settings.deployment",
                    f"no deployment {judge!r}; deployments: {known}",
                )
            )
