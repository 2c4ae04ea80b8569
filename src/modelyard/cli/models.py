"""``modelyard models``: what a running server (or a config) serves."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import aiohttp
import orjson

from modelyard.cli.client import auth_headers
from modelyard.config import ConfigError, config_path_from_env, load_settings
from modelyard.services.build import build_components


def run_models(args: argparse.Namespace) -> int:
    if args.config:
        try:
            components = build_components(load_settings(config_path_from_env(args.config)), None)
        except ConfigError as exc:
            print(str(exc), file=sys.stderr)
            return 1
        rows = [
            (
                name,
                ", ".join(
                    f"{t.provider}/{t.model}" for t in components.table.resolve(name).targets
                ),
            )
            for name in sorted(components.table.names)
        ]
    else:
        try:
            data = asyncio.run(_fetch(args.url, auth_headers(args.api_key)))
        except (aiohttp.ClientError, OSError) as exc:
            print(f"cannot reach {args.url}: {exc}", file=sys.stderr)
            return 1
        if "error" in data:
            print(f"error: {data['error'].get('message')}", file=sys.stderr)
            return 1
        rows = [(m["id"], m.get("owned_by", "")) for m in data.get("data", [])]
    if args.json:
        print(orjson.dumps([{"id": r[0], "detail": r[1]} for r in rows]).decode())
    else:
        for name, detail in rows:
            print(f"{name:32} {detail}")
    return 0


async def _fetch(url: str, headers: dict[str, str]) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{url.rstrip('/')}/v1/models", headers=headers) as resp,
    ):
        data: dict[str, Any] = orjson.loads(await resp.read())
        return data
