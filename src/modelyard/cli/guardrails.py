"""``modelyard guardrails explain``: the policy a call would get. From the config, plus, when a
key or a project is named, the policies the admin API attached to them (read from the store)."""

from __future__ import annotations

import argparse
import sys

import orjson

from modelyard.cli import flags
from modelyard.config import ConfigError, Settings, config_path_from_env, load_settings
from modelyard.core.errors import ModelyardError, NotFound
from modelyard.services.build import build_components


def run_guardrails(args: argparse.Namespace) -> int:
    path = config_path_from_env(args.config)
    try:
        settings = load_settings(path)
        components = build_components(settings, None)
    except ConfigError as exc:
        return flags.config_error(exc)
    if args.deployment not in components.table.names:
        known = ", ".join(sorted(components.table.names)) or "none"
        print(f"no deployment {args.deployment!r}; deployments: {known}", file=sys.stderr)
        return flags.USAGE
    try:
        key_policy, project, project_policy = _stored(args, settings)
    except ModelyardError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return flags.FAILED
    shown = components.policies.explain(
        args.key, project, args.deployment, key_policy, project_policy
    )
    if args.json:
        print(orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode())
        return 0
    by = shown["chosen_by"]
    where = f"{by} {shown['attached_to']}" if shown["attached_to"] else by
    if shown["source"] == "admin":
        where += ", attached through the admin API or the CLI"
    if shown["missing"] is not None:
        print(
            f"{args.deployment}: policy {shown['missing']!r} ({where}) is not in the config: "
            "such calls are refused"
        )
        return 0
    if shown["policy"] is None:
        print(f"{args.deployment}: no guards (chosen by: {where})")
        return 0
    reversible = ", reversible redaction" if shown["reversible"] else ""
    print(f"{args.deployment}: policy {shown['policy']} (chosen by: {where}){reversible}")
    for guard in shown["guards"]:
        phases = ", ".join(guard["phases"])
        print(
            f"  {guard['order']}. {guard['name']} ({guard['kind']}): {guard['action']} on {phases}"
        )
    return 0


def _stored(
    args: argparse.Namespace, settings: Settings
) -> tuple[str | None, str | None, str | None]:
    """The key's admin-attached policy, its project, and the project's (no key, no project:
    nothing read)."""
    if args.key is None and args.project is None:
        return None, None, None
    from modelyard.cli.tenancy import operator, with_admin
    from modelyard.services.tenancy import TenancyAdmin

    async def work(admin: TenancyAdmin) -> tuple[str | None, str | None, str | None]:
        key_policy, project = None, args.project
        if args.key is not None:
            key = await admin.key(operator(), args.key)
            key_policy, project = key.guardrails, project or key.project_id
        project_policy = None
        if project is not None:
            try:
                project_policy = (await admin.project(operator(), project)).guardrails
            except NotFound:
                project_policy = None  # a project not created yet: the config's alone
        return key_policy, project, project_policy

    return with_admin(settings, work)
