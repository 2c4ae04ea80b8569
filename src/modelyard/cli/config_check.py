"""``modelyard config check``: the same validation ``serve`` does, without starting anything."""

from __future__ import annotations

import argparse

from modelyard.cli import flags
from modelyard.config import ConfigError, config_path_from_env, load_settings
from modelyard.services.build import build_components


def run_check(args: argparse.Namespace) -> int:
    path = config_path_from_env(args.config)
    try:
        settings = load_settings(path)
        components = build_components(settings, None)
    except ConfigError as exc:
        return flags.config_error(exc)
    print(f"config OK: {path or '(defaults: embedded model only)'}")
    for name, ps in sorted(components.providers.items()):
        key = "key set" if ps.api_key else "no key"
        print(f"  provider {name}: type {ps.type}, {ps.base_url or 'default URL'}, {key}")
    for name in sorted(components.table.names):
        dep = components.table.resolve(name)
        targets = ", ".join(f"{t.provider}/{t.model}" for t in dep.targets)
        print(f"  deployment {name} -> {targets}")
    return 0
