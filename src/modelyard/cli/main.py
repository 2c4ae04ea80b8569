"""``modelyard`` command line: serve, chat, models, deployments, config check."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from modelyard import __version__

DEFAULT_URL = "http://127.0.0.1:8700"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelyard",
        description="Every AI model behind one door: an OpenAI-compatible gateway.",
    )
    parser.add_argument("--version", action="version", version=f"modelyard {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="start the gateway (with the embedded local model)")
    serve.add_argument("--host", default=None, help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default 8700)")
    serve.add_argument("--config", default=None, help="modelyard.yaml (or MODELYARD_CONFIG)")
    serve.add_argument("--workers", type=int, default=1, help="gateway worker processes")
    serve.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="serve a non-loopback interface even though no API key exists",
    )
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])

    chat = sub.add_parser("chat", help="chat with a model, streaming to the terminal")
    chat.add_argument("prompt", nargs="?", help="one prompt; without it, an interactive chat")
    chat.add_argument("-m", "--model", default="local", help="deployment or model (default local)")
    chat.add_argument("--url", default=DEFAULT_URL, help=f"running server (default {DEFAULT_URL})")
    chat.add_argument("--in-process", action="store_true", help="run the gateway in this process")
    chat.add_argument("--config", default=None, help="config for --in-process")
    chat.add_argument("--system", default=None, help="a system prompt")
    chat.add_argument("--max-tokens", type=int, default=None)
    chat.add_argument("--temperature", type=float, default=None)
    chat.add_argument("--api-key", default=None, help="key for the server (or MODELYARD_API_KEY)")

    reload = sub.add_parser(
        "reload", help="re-read the config of the running server (same as sending it SIGHUP)"
    )
    reload.add_argument("--pid-file", default=None, help="default: <data dir>/modelyard.pid")

    _add_models_parser(sub)

    # Added with deployment versions: `deployments history|rollback`.
    from modelyard.cli.deployments import add_parsers as add_deployment_parsers

    add_deployment_parsers(sub)

    # Added with evaluations: `eval run|show|shadow|prompts|datasets`.
    from modelyard.cli.eval import add_parsers as add_eval_parsers

    add_eval_parsers(sub)

    # Added with projects and keys: `projects`, `keys`, `usage`, `admin init`.
    from modelyard.cli.tenancy import add_parsers as add_tenancy_parsers

    add_tenancy_parsers(sub)

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")
    check = config_sub.add_parser("check", help="validate a config file and summarise it")
    check.add_argument("--config", default=None, help="modelyard.yaml (or MODELYARD_CONFIG)")
    return parser


def _add_models_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    models = sub.add_parser(
        "models", help="list the models a server (or a config) serves, or the model catalog"
    )
    models.add_argument("--url", default=DEFAULT_URL)
    models.add_argument("--config", default=None, help="list from a config instead of a server")
    models.add_argument("--api-key", default=None)
    models.add_argument("--json", action="store_true", help="print JSON")
    # The shipped model catalog, offline: facts and list prices of every known model.
    models.add_argument(
        "--catalog", action="store_true", help="list/search the shipped model catalog (offline)"
    )
    models.add_argument("--vendor", default=None, help="catalog: maker or provider type")
    models.add_argument(
        "--capability",
        choices=["tools", "images", "json_schema", "reasoning"],
        default=None,
        help="catalog: models known to support it",
    )
    models.add_argument(
        "--max-input-price",
        type=float,
        default=None,
        metavar="DOLLARS",
        help="catalog: at most this many dollars per million input tokens",
    )
    models.add_argument(
        "--min-context", type=int, default=None, metavar="N", help="catalog: context >= N tokens"
    )
    models.add_argument("--search", default=None, metavar="TEXT", help="catalog: id contains")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        from modelyard.cli.serve import run_serve

        return run_serve(args)
    if args.command == "chat":
        from modelyard.cli.chat import run_chat

        return run_chat(args)
    if args.command == "reload":
        from modelyard.cli.serve import run_reload

        return run_reload(args)
    if args.command == "models":
        from modelyard.cli.models import run_models

        return run_models(args)
    if args.command == "deployments":
        from modelyard.cli.deployments import run_deployments

        return run_deployments(args)
    if args.command == "eval":
        from modelyard.cli.eval import run_eval_command

        return run_eval_command(args)
    if args.command in ("projects", "keys", "usage", "admin"):
        from modelyard.cli.tenancy import run_tenancy

        return run_tenancy(args)
    from modelyard.cli.config_check import run_check

    return run_check(args)


if __name__ == "__main__":
    sys.exit(main())
