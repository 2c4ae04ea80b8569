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

    models = sub.add_parser("models", help="list the models a server (or a config) serves")
    models.add_argument("--url", default=DEFAULT_URL)
    models.add_argument("--config", default=None, help="list from a config instead of a server")
    models.add_argument("--api-key", default=None)
    models.add_argument("--json", action="store_true", help="print JSON")

    # Added with deployment versions: `deployments history|rollback`.
    from modelyard.cli.deployments import add_parsers as add_deployment_parsers

    add_deployment_parsers(sub)

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")
    check = config_sub.add_parser("check", help="validate a config file and summarise it")
    check.add_argument("--config", default=None, help="modelyard.yaml (or MODELYARD_CONFIG)")
    return parser


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
    from modelyard.cli.config_check import run_check

    return run_check(args)


if __name__ == "__main__":
    sys.exit(main())
