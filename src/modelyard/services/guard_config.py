"""The config's guardrail policies, built and checked with the rest of the config."""

from __future__ import annotations

from modelyard.config import ConfigIssue, Settings
from modelyard.guardrails.model import Policy
from modelyard.guardrails.policy import GuardSpec, Policies, PolicyError, build_policy
from modelyard.guardrails.registry import guard_kinds


def build_policies(settings: Settings, issues: list[ConfigIssue]) -> Policies:
    """The config's policies, each guard's settings checked by its kind; problems are added to
    ``issues`` with their config path."""
    cfg = settings.guardrails
    if not cfg.policies:
        return Policies()
    kinds = guard_kinds()
    built: dict[str, Policy] = {}
    for name, pcfg in cfg.policies.items():
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
