"""Turn validated settings into the parts the services run on: providers, deployments, catalog.

Everything here is checked before anything starts, so ``modelyard config check`` and ``serve``
report the same errors, each naming its config path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from modelyard.catalog import Catalog, build_catalog, local_model_info
from modelyard.config import ConfigError, ConfigIssue, Settings
from modelyard.config.agents import AGENT_NAME_PATTERN
from modelyard.config.schema import (
    DeploymentConfig,
    LearnedRouterConfig,
    SemanticRuleConfig,
    TargetTimeouts,
)
from modelyard.core.timeouts import CallTimeouts
from modelyard.guardrails.policy import Policies
from modelyard.local.paths import DEFAULT_CTX, DEFAULT_MODEL_NAME
from modelyard.providers.base import ProviderSettings
from modelyard.providers.registry import check_settings, provider_types
from modelyard.routing import Deployment, RetryPolicy, RoutingTable, Shadow, Target
from modelyard.services.guard_config import build_policies

if TYPE_CHECKING:
    from modelyard.routing.model import RouterModel  # numpy: imported only with a router

LOCAL_PROVIDER = "local"
LOCAL_DEPLOYMENT = "local"
# Generation on a CPU is slow; these bound the wait without cutting off long local answers.
LOCAL_TIMEOUTS = CallTimeouts(connect=5.0, first_token=300.0, total=1800.0)


@dataclass(frozen=True, slots=True)
class Components:
    providers: dict[str, ProviderSettings]
    table: RoutingTable
    catalog: Catalog
    policies: Policies = field(default_factory=Policies)  # guardrails (issue 22)


def local_models(settings: Settings) -> dict[str, Path]:
    """The GGUF files the embedded runtime must load, by served name (empty when disabled)."""
    if not settings.local.enabled:
        return {}
    from modelyard.local.paths import default_model_path

    models = {DEFAULT_MODEL_NAME: default_model_path()}
    models.update({name: m.path for name, m in settings.local.models.items()})
    return models


def build_components(
    settings: Settings,
    local_base_url: str | None,
    routers: Mapping[str, RouterModel] | None = None,
) -> Components:
    """``routers``: learned routers read beforehand (``services.routers.preload``), by
    deployment; a router not among them is read from its file here, and one in the store is
    left out (an offline check, or the build before the store opens: ``Root.open`` rebuilds)."""
    issues: list[ConfigIssue] = []
    known = provider_types()
    providers: dict[str, ProviderSettings] = {}
    for name, cfg in settings.providers.items():
        ps = ProviderSettings(
            name=name,
            type=cfg.type,
            base_url=cfg.base_url,
            api_key=cfg.api_key.reveal() if cfg.api_key else None,
            headers=dict(cfg.headers),
            timeouts=CallTimeouts(
                cfg.timeouts.connect, cfg.timeouts.first_token, cfg.timeouts.total
            ),
            options=dict(cfg.options),
        )
        problem = check_settings(ps, known)
        if problem:
            issues.append(ConfigIssue(f"providers.{name}.{problem[0]}", problem[1]))
        providers[name] = ps
    # Shipped model facts and list prices, with the config's negotiated/local price overrides.
    catalog = build_catalog(settings.prices, [p.type for p in providers.values()])
    deployments = {
        name: _deployment(name, d, providers) for name, d in settings.deployments.items()
    }
    for name, d in settings.deployments.items():
        if d.router is not None:
            model = (routers or {}).get(name)
            deployments[name] = _with_router(deployments[name], d.router, model, issues)
        if d.rules is not None:
            deployments[name] = _with_rules(deployments[name], d.rules)
    if settings.local.enabled:
        _add_local(settings, local_base_url, providers, deployments, catalog, issues)
    policies = build_policies(settings, issues, deployments)
    issues.extend(_agent_issues(settings, deployments))
    if issues:
        raise ConfigError(issues)
    return Components(providers, RoutingTable(deployments), catalog, policies)


def _agent_issues(settings: Settings, deployments: Mapping[str, Deployment]) -> list[ConfigIssue]:
    """An agent's name is one a request can give (``agent:<name>``); its deployment must be
    one this config serves (local models included)."""
    issues = [
        ConfigIssue(f"agents.{name}", "agent names use letters, digits, . _ - (up to 64)")
        for name in settings.agents
        if not re.fullmatch(AGENT_NAME_PATTERN, name)
    ]
    issues += [
        ConfigIssue(
            f"agents.{name}.deployment",
            f"unknown deployment {agent.deployment!r}; known: {', '.join(sorted(deployments))}",
        )
        for name, agent in settings.agents.items()
        if agent.deployment not in deployments
    ]
    return issues


def _deployment(
    name: str, cfg: DeploymentConfig, providers: dict[str, ProviderSettings]
) -> Deployment:
    targets = tuple(
        Target(
            t.provider,
            t.model,
            dict(t.params),
            weight=t.weight,
            timeouts=_target_timeouts(
                t.timeouts, providers[t.provider].timeouts if t.provider in providers else None
            ),
        )
        for t in cfg.targets
    )
    retry = RetryPolicy(
        attempts=cfg.retry.attempts,
        backoff_s=cfg.retry.backoff_ms / 1000,
        max_backoff_s=cfg.retry.max_backoff_ms / 1000,
        budget_s=cfg.retry.budget_s,
    )
    shadow = None
    if cfg.shadow is not None:
        s = cfg.shadow
        candidate = Target(s.provider, s.model, dict(s.params))
        shadow = Shadow(candidate, s.percent, s.max_in_flight)
    return Deployment(
        name,
        targets,
        cfg.description,
        cfg.strategy,
        cfg.sticky_header,
        retry,
        shadow,
        cfg.hosted_tools,
    )


def _with_router(
    deployment: Deployment,
    cfg: LearnedRouterConfig,
    model: RouterModel | None,
    issues: list[ConfigIssue],
) -> Deployment:
    """The deployment with its learned router (``model``, else read from the artifact file;
    each reload re-reads it)."""
    from modelyard.core.errors import ModelyardError
    from modelyard.routing.learned import LearnedRouting, threshold_for
    from modelyard.routing.model import load

    if model is None:
        if cfg.artifact is None:
            return deployment  # in the store, not read here (see build_components)
        try:
            model = load(cfg.artifact)
        except ModelyardError as exc:
            path = f"deployments.{deployment.name}.router.artifact"
            issues.append(ConfigIssue(path, exc.message))
            return deployment
    threshold, label = threshold_for(model, cfg.mode, cfg.threshold, cfg.strong_share)
    routing = LearnedRouting(model, threshold, label, cfg.strong)
    return replace(deployment, learned=routing)


def _with_rules(deployment: Deployment, rules: list[SemanticRuleConfig]) -> Deployment:
    """The deployment with its semantic rules compiled (regexes, example vectors)."""
    from modelyard.routing.semantic import SemanticRouting, SemanticRule

    built = tuple(
        SemanticRule.build(
            r.target,
            tuple(r.keywords),
            r.regex,
            r.json_schema,
            tuple(r.examples),
            r.min_similarity,
        )
        for r in rules
    )
    return replace(deployment, semantic=SemanticRouting(built))


def _target_timeouts(cfg: TargetTimeouts, provider: CallTimeouts | None) -> CallTimeouts | None:
    """The provider's timeouts with this target's overrides; None when it overrides nothing."""
    if cfg.connect is None and cfg.first_token is None and cfg.total is None:
        return None
    base = provider or LOCAL_TIMEOUTS
    return CallTimeouts(
        cfg.connect or base.connect, cfg.first_token or base.first_token, cfg.total or base.total
    )


def _add_local(
    settings: Settings,
    base_url: str | None,
    providers: dict[str, ProviderSettings],
    deployments: dict[str, Deployment],
    catalog: Catalog,
    issues: list[ConfigIssue],
) -> None:
    providers[LOCAL_PROVIDER] = ProviderSettings(
        name=LOCAL_PROVIDER,
        type="local",
        base_url=base_url or "http://127.0.0.1:0/v1",
        timeouts=LOCAL_TIMEOUTS,
    )
    served = [DEFAULT_MODEL_NAME, *settings.local.models]
    for name in served:
        model_cfg = settings.local.models.get(name)
        context = (model_cfg.context if model_cfg else None) or settings.local.context
        # Unconfigured, the worker runs DEFAULT_CTX capped at the model's training context, which
        # only the loaded file tells: DEFAULT_CTX is an upper bound (the worker refuses beyond).
        context = context or DEFAULT_CTX
        catalog.add("local", local_model_info(name, context))
    for name in [LOCAL_DEPLOYMENT, *served]:
        if name in deployments:
            issues.append(
                ConfigIssue(f"deployments.{name}", "this name is taken by the embedded runtime")
            )
            continue
        model = DEFAULT_MODEL_NAME if name == LOCAL_DEPLOYMENT else name
        # One attempt: a full local queue answers 429 with Retry-After, and retrying it here
        # would only move the wait from the worker's bounded queue into the gateway.
        deployments[name] = Deployment(
            name,
            (Target(LOCAL_PROVIDER, model),),
            "embedded llama.cpp runtime",
            retry=RetryPolicy(attempts=1),
        )


def with_overrides(settings: Settings, overrides: Mapping[str, DeploymentConfig]) -> Settings:
    """Settings whose deployments of those names are replaced (rolled-back versions, see
    ``services.deployments``); added for deployment versions, before ``build_components``."""
    if not overrides:
        return settings
    deployments = dict(settings.deployments)
    deployments.update({name: cfg for name, cfg in overrides.items() if name in deployments})
    return settings.model_copy(update={"deployments": deployments})
