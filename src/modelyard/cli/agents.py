"""``modelyard agents list|show|run``: the agents of a running server, over HTTP.

``list`` and ``show`` read the admin API (``GET /admin/v1/agents[/{name}]``); ``run`` sends one
prompt to ``POST /v1/responses`` as ``model: "agent:<name>[@<version>]"`` and prints the answer
(``--json``: the whole ``Response``), the agent version that ran on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import aiohttp
import orjson

from modelyard.cli import flags
from modelyard.cli.client import auth_headers


def run_agents(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_dispatch(args))
    except KeyboardInterrupt:
        return flags.INTERRUPTED
    except (aiohttp.ClientError, OSError) as exc:
        print(f"error: cannot reach {args.url}: {exc}", file=sys.stderr)
        return flags.FAILED


async def _dispatch(args: argparse.Namespace) -> int:
    url = args.url.rstrip("/")
    async with aiohttp.ClientSession(headers=auth_headers(args.api_key)) as session:
        if args.agents_command == "run":
            return await _run(session, url, args)
        path = "/admin/v1/agents" + (f"/{args.name}" if args.agents_command == "show" else "")
        async with session.get(url + path) as resp:
            body = await resp.json(content_type=None)
            if resp.status != 200:
                return _failed(body)
    if args.json:
        _print_json(body)
    elif args.agents_command == "list":
        for agent in body["data"]:
            print(_line(agent))
    else:
        _show(body)
    return flags.OK


def _line(agent: dict[str, Any]) -> str:
    return (
        f"{agent['name']}  v{agent['live_version']} of {agent['latest_version']}  "
        f"{agent['origin']}  -> {agent['deployment']}"
        + (f"  {agent['description']}" if agent.get("description") else "")
    )


def _show(agent: dict[str, Any]) -> None:
    print(_line(agent))
    for version in agent["versions"]:
        mark = "*" if version["live"] else " "
        spec = version["definition"]
        tools = ", ".join(
            t.get("name") or t.get("server_label", "?") for t in spec.get("tools", [])
        )
        print(
            f" {mark} v{version['version']}  {version['created_at']}  {version['source']}  "
            f"-> {spec['deployment']}" + (f"  tools: {tools}" if tools else "")
        )


async def _run(session: aiohttp.ClientSession, url: str, args: argparse.Namespace) -> int:
    model = f"agent:{args.name}" + (f"@{args.version}" if args.version else "")
    payload = {"model": model, "input": args.prompt}
    async with session.post(url + "/v1/responses", json=payload) as resp:
        body = await resp.json(content_type=None)
        ran = resp.headers.get("x-modelyard-agent")
        if resp.status != 200:
            return _failed(body)
    if args.json:
        _print_json(body)
    else:
        print(_text(body))
    print(f"agent: {ran}  response: {body.get('id')}", file=sys.stderr)
    return flags.OK if body.get("status") == "completed" else flags.FAILED


def _text(body: dict[str, Any]) -> str:
    parts = [
        part.get("text", "")
        for item in body.get("output", [])
        if item.get("type") == "message"
        for part in item.get("content", [])
    ]
    return "".join(parts)


def _failed(body: Any) -> int:
    error = body.get("error", {}) if isinstance(body, dict) else {}
    print(f"error: {error.get('message', body)}", file=sys.stderr)
    return flags.FAILED


def _print_json(body: Any) -> None:
    sys.stdout.write(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() + "\n")
