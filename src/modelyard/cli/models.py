"""``modelyard models``: what a running server (or a config) serves; with ``--catalog``, the
shipped model catalog (facts and list prices), offline."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import aiohttp
import orjson

from modelyard.catalog import ModelInfo, Tiered, base_rate
from modelyard.catalog.pricing import Rate
from modelyard.cli import flags
from modelyard.cli.client import auth_headers
from modelyard.cli.parser import CATALOG_FLAGS
from modelyard.config import ConfigError, config_path_from_env, load_settings
from modelyard.services.build import build_components


def run_models(args: argparse.Namespace) -> int:
    if args.catalog:
        if args.config:
            return flags.usage_error("models", "--catalog lists the shipped catalog, not a config")
        return run_catalog(args)
    given = [name for name in CATALOG_FLAGS if getattr(args, name) is not None]
    if given:
        flag = "--" + given[0].replace("_", "-")
        return flags.usage_error("models", f"{flag} filters the catalog: add --catalog")
    if args.config:
        try:
            components = build_components(load_settings(config_path_from_env(args.config)), None)
        except ConfigError as exc:
            return flags.config_error(exc)
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


def run_catalog(args: argparse.Namespace) -> int:
    """List the shipped catalog, filtered; never touches the network."""
    from modelyard.catalog import build_catalog

    found = build_catalog().search(
        vendor=args.vendor,
        capability=args.capability,
        max_input_price=args.max_input_price,
        min_context=args.min_context,
        text=args.search,
    )
    if args.json:
        print(orjson.dumps([_catalog_json(info) for info in found]).decode())
        return 0
    if not found:
        print("no model in the catalog matches", file=sys.stderr)
        return 1
    rows = [_catalog_row(info) for info in found]
    header = ("PROVIDER", "VENDOR", "MODEL", "CONTEXT", "MAX OUT", "IN $/M", "OUT $/M", "CACHE $/M")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _catalog_row(info: ModelInfo) -> tuple[str, ...]:
    prices = info.list_prices()
    rates = prices.rates() if prices is not None else {}
    return (
        info.provider_type or "-",
        info.vendor,
        info.id,
        _count(info.context_window),
        _count(info.max_output),
        _dollars(rates.get("input")),
        _dollars(rates.get("output")),
        _dollars(rates.get("cached_input")),
    )


def _catalog_json(info: ModelInfo) -> dict[str, Any]:
    from modelyard.catalog import CAPABILITIES
    from modelyard.services.models import prices_json

    return {
        "provider_type": info.provider_type,
        "vendor": info.vendor,
        "id": info.id,
        "context_window": info.context_window,
        "max_output": info.max_output,
        "input_modalities": list(info.input_modalities) if info.input_modalities else None,
        "capabilities": {c: info.capability(c) for c in CAPABILITIES},
        "deprecated": info.deprecated,
        "prices": prices_json(info.list_prices()),
    }


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _dollars(rate: Rate | None) -> str:
    if rate is None:
        return "-"
    text = f"{base_rate(rate):f}"
    return f"{text}+" if isinstance(rate, Tiered) else text
