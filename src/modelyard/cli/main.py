"""``modelyard``: the command line of the gateway.

``serve`` runs the gateway; ``reload`` and ``deployments rollback`` signal a running one;
``chat``, ``models`` and ``eval run|shadow`` call one over HTTP; ``projects``, ``keys``,
``usage``, ``admin init``, ``deployments history`` and ``eval list|show`` work on the store the
server uses, directly; ``config check``, ``models --catalog`` and ``eval prompts|datasets`` need
nothing running. The parser is in ``cli/parser.py``; each command's module runs it, and is
imported only then. Exit codes (``cli/flags.py``): 0 done, 1 failed, 2 usage or config error,
130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from modelyard.cli.parser import build_parser

Handler = Callable[[argparse.Namespace], int]

# Command -> (module, function). A table rather than an if-chain, so a command missing here is
# a KeyError a test catches, not a silent fall-through to another command.
HANDLERS: Final[Mapping[str, tuple[str, str]]] = {
    "serve": ("modelyard.cli.serve", "run_serve"),
    "reload": ("modelyard.cli.serve", "run_reload"),
    "chat": ("modelyard.cli.chat", "run_chat"),
    "models": ("modelyard.cli.models", "run_models"),
    "config": ("modelyard.cli.config_check", "run_check"),
    "deployments": ("modelyard.cli.deployments", "run_deployments"),
    "agents": ("modelyard.cli.agents", "run_agents"),
    "projects": ("modelyard.cli.tenancy", "run_tenancy"),
    "keys": ("modelyard.cli.tenancy", "run_tenancy"),
    "usage": ("modelyard.cli.tenancy", "run_tenancy"),
    "admin": ("modelyard.cli.tenancy", "run_tenancy"),
    "audit": ("modelyard.cli.audit", "run_audit"),
    "eval": ("modelyard.cli.eval", "run_eval_command"),
    "guardrails": ("modelyard.cli.guardrails", "run_guardrails"),
    "router": ("modelyard.cli.router", "run_router_command"),
}


def handler(command: str) -> Handler:
    """The function that runs ``command``, its module imported now."""
    module, function = HANDLERS[command]
    found: Handler = getattr(importlib.import_module(module), function)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return handler(args.command)(args)


if __name__ == "__main__":
    sys.exit(main())
