"""Policies built from their specs, and which policy a call gets.

The most specific attachment wins: the caller's key, then its project, then the deployment,
then the default. A key or a project may have a policy attached in the config (by id) and one
attached through the admin API (stored with the key or project, carried on its ``Principal``):
at the same level the admin API's wins (it is the later, run-time act), and ``explain`` shows
the config attachment it overrides. So the order is: the key's admin attachment, the key's
config attachment, the project's admin attachment, the project's config attachment, the
deployment's, the default. ``off`` is a policy name that means no guards (a key exempted from
its project's policy, say).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from modelyard.core.plugins import PluginError, Plugins
from modelyard.guardrails.model import Action, Guard, GuardKind, Phase, Policy

OFF: Final = "off"
DEFAULT_WINDOW: Final = 128


@dataclass(frozen=True, slots=True)
class GuardSpec:
    """One guard as configured (settings still unchecked)."""

    kind: str
    phases: tuple[Phase, ...]
    action: Action
    name: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    window: int = DEFAULT_WINDOW


class PolicyError(ValueError):
    """A spec that cannot be built; ``path`` names the part (``guards[1].settings``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


def build_policy(
    name: str, specs: Sequence[GuardSpec], reversible: bool, kinds: Plugins[GuardKind]
) -> Policy:
    guards: list[Guard] = []
    for n, spec in enumerate(specs):
        try:
            kind = kinds.get(spec.kind)
        except PluginError as exc:
            raise PolicyError(f"guards[{n}].kind", str(exc)) from exc
        try:
            detector = kind(spec.settings)
        except ValueError as exc:
            raise PolicyError(f"guards[{n}].settings", str(exc)) from exc
        if not callable(getattr(detector, "scan", None)):
            raise PolicyError(f"guards[{n}].kind", f"{spec.kind!r} built no detector with scan()")
        if hasattr(detector, "ascan"):
            _check_judge(n, spec)
        gname = spec.name or spec.kind
        if any(g.name == gname for g in guards):
            raise PolicyError(f"guards[{n}].name", f"{gname!r} is used twice; name the guards")
        guards.append(
            Guard(gname, spec.kind, frozenset(spec.phases), spec.action, detector, spec.window)
        )
    return Policy(name, tuple(guards), reversible)


def _check_judge(n: int, spec: GuardSpec) -> None:
    """A guard that waits for a judge: not on tool calls (their arguments stream out as they
    come); on the answer, block or flag only (its finding is the whole text, which a stream has
    partly sent by the time it is judged)."""
    if "tool_input" in spec.phases:
        raise PolicyError(
            f"guards[{n}].phases",
            f"{spec.kind!r} waits for a judge, so it runs on input, tool_output and output only",
        )
    if "output" in spec.phases and spec.action == "redact":
        raise PolicyError(
            f"guards[{n}].action",
            f"{spec.kind!r} judges a whole answer: on the output, block or flag (not redact)",
        )


@dataclass(frozen=True, slots=True)
class Attachment:
    """The policy a call gets and why (``scope`` is key, project, deployment or default;
    ``source`` is ``admin`` or ``config``). ``missing``: the admin API attached a policy the
    config no longer has (a reload removed it); the call must be refused, not run unguarded."""

    policy: Policy | None
    scope: str
    attached_as: str | None  # the key id, project id or deployment name it is attached to
    source: str | None = None
    missing: str | None = None
    overrides: str | None = None  # the config's attachment at the same level, overridden


@dataclass(frozen=True, slots=True)
class Policies:
    policies: Mapping[str, Policy] = field(default_factory=dict)
    keys: Mapping[str, str] = field(default_factory=dict)
    projects: Mapping[str, str] = field(default_factory=dict)
    deployments: Mapping[str, str] = field(default_factory=dict)
    default: str | None = None

    @property
    def empty(self) -> bool:
        """No policy defined nor attached: the admin API can attach none either, so the guard
        stages are not registered."""
        return not (self.policies or self.keys or self.projects or self.deployments or self.default)

    def names(self) -> list[str]:
        """The names an attachment may use: the configured policies and ``off``."""
        return [*sorted(self.policies), OFF]

    def choose(
        self,
        key_id: str | None,
        project_id: str | None,
        deployment: str,
        key_policy: str | None = None,
        project_policy: str | None = None,
    ) -> Attachment:
        """The most specific attachment: key, project (each the admin API's attachment, then
        the config's), deployment, default."""
        for scope, admin, table, subject in (
            ("key", key_policy, self.keys, key_id),
            ("project", project_policy, self.projects, project_id),
        ):
            configured = table.get(subject) if subject is not None else None
            if admin is not None:
                if admin != OFF and admin not in self.policies:
                    return Attachment(None, scope, subject, "admin", missing=admin)
                return Attachment(self._policy(admin), scope, subject, "admin", None, configured)
            if configured is not None:
                return Attachment(self._policy(configured), scope, subject, "config")
        if deployment in self.deployments:
            policy = self._policy(self.deployments[deployment])
            return Attachment(policy, "deployment", deployment, "config")
        if self.default is not None:
            return Attachment(self._policy(self.default), "default", None, "config")
        return Attachment(None, "none", None)

    def _policy(self, name: str) -> Policy | None:
        return None if name == OFF else self.policies[name]

    def explain(
        self,
        key_id: str | None,
        project_id: str | None,
        deployment: str,
        key_policy: str | None = None,
        project_policy: str | None = None,
    ) -> dict[str, Any]:
        """The effective policy of such a call, its guards in the order they run."""
        choice = self.choose(key_id, project_id, deployment, key_policy, project_policy)
        policy = choice.policy
        return {
            "deployment": deployment,
            "key": key_id,
            "project": project_id,
            "policy": policy.name if policy else None,
            "chosen_by": choice.scope,
            "source": choice.source,
            "attached_to": choice.attached_as,
            "missing": choice.missing,
            "overrides": choice.overrides,
            "reversible": policy.reversible if policy else False,
            "guards": [
                {
                    "order": n + 1,
                    "name": g.name,
                    "kind": g.kind,
                    "phases": sorted(g.phases),
                    "action": g.action,
                }
                for n, g in enumerate(policy.guards if policy else ())
            ],
        }
