"""``modelyard guardrails explain``: the policy a call would get, from the config alone."""

from __future__ import annotations

import argparse
import sys

import orjson

from modelyard.cli import flags
from modelyard.config import ConfigError, config_path_from_env, load_settings
from modelyard.services.build import build_components


def run_guardrails(args: argparse.Namespace) -> int:
    path = config_path_from_env(args.config)
    try:
        components = build_components(load_settings(path), None)
    except ConfigError as exc:
        return flags.config_error(exc)
    if args.deployment not in components.table.names:
        known = ", ".join(sorted(components.table.names)) or "none"
        print(f"no deployment {args.deployment!r}; deployments: {known}", file=sys.stderr)
        return flags.USAGE
    shown = components.policies.explain(args.key, args.project, args.deployment)
    if args.json:
        print(orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode())
        return 0
    by = shown["chosen_by"]
    where = f"{by} {shown['attached_to']}" if shown["attached_to"] else by
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
