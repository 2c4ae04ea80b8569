"""What every command shares: the spelling and help of common flags, and the exit codes.

One concept has one flag and one help text across the command line (``--config``, ``--json``,
``--url``, ``--api-key``, ``--pid-file``, the limit flags), so a user who learnt it for one
command knows it for all of them. A renamed flag stays accepted under its old spelling, hidden
from the help, with a note on stderr (``DeprecatedAlias``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

# Exit codes, the same for every command (docs/cli.md states them).
OK = 0
FAILED = 1  # well-formed, but it could not be done: not found, a conflict, unreachable
USAGE = 2  # the command line, one of its values or the config file is wrong (argparse's too)
INTERRUPTED = 130

DEFAULT_URL = "http://127.0.0.1:8700"
CONFIG_HELP = "modelyard.yaml (default: $MODELYARD_CONFIG, else built-in defaults)"
JSON_HELP = "print JSON instead of text"
URL_HELP = "the running server"
API_KEY_HELP = "API key for the server (default: $MODELYARD_API_KEY)"
PID_FILE_HELP = "the server's PID file (default: <data dir>/modelyard.pid)"


def add_config(parser: argparse.ArgumentParser, help_text: str = CONFIG_HELP) -> None:
    parser.add_argument("--config", default=None, metavar="FILE", help=help_text)


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help=JSON_HELP)


def add_server(parser: argparse.ArgumentParser) -> None:
    """``--url`` and ``--api-key``: the commands that call a running server over HTTP."""
    parser.add_argument("--url", default=DEFAULT_URL, help=URL_HELP)
    parser.add_argument("--api-key", default=None, metavar="KEY", help=API_KEY_HELP)


def add_pid_file(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pid-file", default=None, metavar="FILE", help=PID_FILE_HELP)


def add_limits(parser: argparse.ArgumentParser) -> None:
    """The limits a project and a key both take, under the same names (``monthly_budget_usd``
    and ``daily_budget_usd`` in the admin API)."""
    parser.add_argument("--rpm", type=int, default=None, metavar="N", help="requests per minute")
    parser.add_argument("--tpm", type=int, default=None, metavar="N", help="tokens per minute")
    parser.add_argument(
        "--budget-usd-month",
        dest="budget_month",
        default=None,
        metavar="USD",
        help="monthly budget in dollars (up to 6 decimals)",
    )
    parser.add_argument(
        "--budget-usd-day",
        dest="budget_day",
        default=None,
        metavar="USD",
        help="daily budget in dollars (up to 6 decimals)",
    )


class DeprecatedAlias(argparse.Action):
    """A former spelling of a flag: still accepted, hidden from the help, noted on stderr."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        self.replacement: str = kwargs.pop("replacement")
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        print(f"note: {option_string} is deprecated; use {self.replacement}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def usage_error(command: str, message: str) -> int:
    """Refuse a command line the parser alone cannot judge, as argparse refuses the rest."""
    print(f"modelyard {command}: error: {message}", file=sys.stderr)
    return USAGE


def config_error(exc: Exception) -> int:
    """An invalid config file: its errors (each naming its path) on stderr, exit code 2."""
    print(str(exc), file=sys.stderr)
    return USAGE


def add_guardrails(parser: argparse.ArgumentParser, required: bool = False) -> None:
    """``--guardrails POLICY``: a policy named in the config, ``off``, or (updates) ``none``."""
    parser.add_argument(
        "--guardrails",
        required=required,
        default=None,
        metavar="POLICY",
        help="a guardrail policy named in the config, or 'off' (no guards)"
        + ("; 'none' detaches" if required else ""),
    )
