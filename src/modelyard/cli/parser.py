"""The ``modelyard`` command line: every command, flag and help text, in one place.

Building the parser imports nothing heavy (no uvicorn, SQLAlchemy or llama.cpp), so ``--help``
and the light commands start fast; ``main`` imports a command's module only to run it.
``docs/cli.md`` is generated from this parser (``make docs``), and ``make lint`` fails when it is
stale.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from modelyard import __version__
from modelyard.cli import flags

if TYPE_CHECKING:  # generic only to the type checker
    SubParsers: TypeAlias = "argparse._SubParsersAction[Parser]"

DESCRIPTION = (
    "Every AI model behind one door: a gateway serving the OpenAI and Anthropic APIs in front of "
    "any vendor's models and an embedded local model, with projects, keys, limits, usage and "
    "evaluations."
)
CATALOG_FLAGS = ("vendor", "capability", "max_input_price", "min_context", "search")


class HelpFormatter(argparse.HelpFormatter):
    """Appends each flag's default, read from the parser, so no help text states a stale one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help
        if text and action.default not in (None, False, argparse.SUPPRESS):
            return f"{text} (default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose subcommands (which argparse builds as the same class) all
    use ``HelpFormatter``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="modelyard", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"modelyard {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (
        _add_serve,
        _add_reload,
        _add_chat,
        _add_models,
        _add_config,
        _add_deployments,
        _add_agents,
        _add_projects,
        _add_keys,
        _add_usage,
        _add_admin,
        _add_audit,
        _add_eval,
        _add_guardrails,
        _add_router,
    ):
        add(sub)
    return parser


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"must be a whole number of processes, 1 or more: {text!r}"
        )
    return value


def _add_serve(sub: SubParsers) -> None:
    serve = sub.add_parser("serve", help="start the gateway (with the embedded local model)")
    serve.add_argument(
        "--host", default=None, help="interface to bind (default: server.host, 127.0.0.1)"
    )
    serve.add_argument("--port", type=int, default=None, help="port (default: server.port, 8700)")
    flags.add_config(serve)
    serve.add_argument(
        "--workers",
        type=_workers,
        default=None,
        metavar="N",
        help="worker processes (default: the CPUs the embedded model leaves free when the "
        "limits are shared in Redis, else 1; see docs/performance.md)",
    )
    serve.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="serve a non-loopback interface even though no API key exists",
    )
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="log level",
    )


def _add_reload(sub: SubParsers) -> None:
    reload = sub.add_parser(
        "reload", help="re-read the config of the running server (signals it: SIGHUP)"
    )
    flags.add_pid_file(reload)


def _add_chat(sub: SubParsers) -> None:
    chat = sub.add_parser("chat", help="chat with a model, streaming to the terminal")
    chat.add_argument("prompt", nargs="?", help="one prompt; without it, an interactive chat")
    chat.add_argument("-m", "--model", default="local", help="deployment or model")
    flags.add_server(chat)
    chat.add_argument(
        "--in-process", action="store_true", help="run the gateway in this process, no server"
    )
    flags.add_config(chat, "with --in-process: the config to run (default: $MODELYARD_CONFIG)")
    chat.add_argument("--system", default=None, help="a system prompt")
    chat.add_argument(
        "--max-tokens", type=int, default=None, metavar="N", help="at most N tokens per answer"
    )
    chat.add_argument(
        "--temperature", type=float, default=None, metavar="T", help="sampling temperature"
    )
    chat.add_argument(
        "--responses",
        action="store_true",
        help="hold a stored conversation through the Responses API (the server keeps it); "
        "each answer's response id is printed on stderr",
    )
    chat.add_argument(
        "--previous",
        default=None,
        metavar="RESPONSE_ID",
        help="continue the stored conversation that ended with this response (implies --responses)",
    )


def _add_models(sub: SubParsers) -> None:
    models = sub.add_parser(
        "models", help="list the models a server (or a config) serves, or the model catalog"
    )
    flags.add_server(models)
    flags.add_config(models, "list what this config serves instead of asking a server")
    flags.add_json(models)
    models.add_argument(
        "--catalog", action="store_true", help="list/search the shipped model catalog (offline)"
    )
    models.add_argument("--vendor", default=None, help="with --catalog: maker or provider type")
    models.add_argument(
        "--capability",
        choices=["tools", "images", "json_schema", "reasoning"],
        default=None,
        help="with --catalog: models known to support it",
    )
    models.add_argument(
        "--max-input-price",
        type=float,
        default=None,
        metavar="USD",
        help="with --catalog: at most this many dollars per million input tokens",
    )
    models.add_argument(
        "--min-context",
        type=int,
        default=None,
        metavar="N",
        help="with --catalog: a context window of at least N tokens",
    )
    models.add_argument(
        "--search", default=None, metavar="TEXT", help="with --catalog: model ids containing TEXT"
    )


def _add_config(sub: SubParsers) -> None:
    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")
    check = config_sub.add_parser("check", help="validate a config file and summarise it")
    flags.add_config(check)


def _add_guardrails(sub: SubParsers) -> None:
    group = sub.add_parser("guardrails", help="guardrail policies (from the config)")
    g_sub = group.add_subparsers(dest="guardrails_command", required=True, metavar="SUBCOMMAND")
    explain = g_sub.add_parser(
        "explain", help="the policy a call would get (key, then project, deployment, default)"
    )
    explain.add_argument("deployment", help="the deployment called")
    explain.add_argument("--key", default=None, metavar="KEY_ID", help="the calling key's id")
    explain.add_argument(
        "--project", default=None, metavar="PROJECT_ID", help="the calling key's project"
    )
    flags.add_json(explain)
    flags.add_config(explain)


def _add_deployments(sub: SubParsers) -> None:
    group = sub.add_parser("deployments", help="numbered versions of deployments, and rollback")
    dep_sub = group.add_subparsers(dest="deployments_command", required=True, metavar="SUBCOMMAND")
    hist = dep_sub.add_parser("history", help="list the versions of a deployment")
    hist.add_argument("name", help="deployment name")
    flags.add_json(hist)
    flags.add_config(hist)
    back = dep_sub.add_parser("rollback", help="serve an earlier version of a deployment again")
    back.add_argument("name", help="deployment name")
    back.add_argument("version", type=int, help="the version number to serve again")
    flags.add_config(back)
    flags.add_pid_file(back)


def _add_agents(sub: SubParsers) -> None:
    group = sub.add_parser("agents", help="list, show and run the agents of a running server")
    agents = group.add_subparsers(dest="agents_command", required=True, metavar="SUBCOMMAND")
    listed = agents.add_parser("list", help="agents with their live version and deployment")
    show = agents.add_parser("show", help="one agent and its versions (* marks the live one)")
    show.add_argument("name", help="agent name")
    run = agents.add_parser("run", help="send one prompt to an agent and print its answer")
    run.add_argument("name", help="agent name")
    run.add_argument("prompt", help="the input")
    run.add_argument(
        "--version",
        type=int,
        default=None,
        metavar="N",
        help="that version (default: the live one)",
    )
    for parser in (listed, show, run):
        flags.add_server(parser)
        flags.add_json(parser)


def _add_projects(sub: SubParsers) -> None:
    projects = sub.add_parser("projects", help="create and list projects")
    proj = projects.add_subparsers(dest="projects_command", required=True, metavar="SUBCOMMAND")
    create = proj.add_parser("create", help="create a project")
    create.add_argument("id", help="project id: lowercase letters, digits, _ or -")
    create.add_argument("--description", default=None, help="free text, up to 2000 characters")
    flags.add_limits(create)
    flags.add_guardrails(create)
    _store_flags(create)
    _store_flags(proj.add_parser("list", help="list projects"))
    update = proj.add_parser("update", help="attach a guardrail policy to a project")
    update.add_argument("id", help="project id")
    flags.add_guardrails(update, required=True)
    _store_flags(update)


def _add_keys(sub: SubParsers) -> None:
    keys = sub.add_parser("keys", help="create, list and revoke API keys")
    key_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="SUBCOMMAND")
    kc = key_sub.add_parser("create", help="create a key (printed once)")
    kc.add_argument("--project", required=True, help="the project the key belongs to")
    kc.add_argument(
        "--role",
        choices=["member", "owner"],
        default="member",
        help="the key's role",
    )
    kc.add_argument("--name", default=None, help="a label for the key")
    flags.add_limits(kc)
    # Before 2026-12 a key's monthly budget was --budget-usd, a project's --budget-usd-month.
    kc.add_argument(
        "--budget-usd",
        dest="budget_month",
        action=flags.DeprecatedAlias,
        replacement="--budget-usd-month",
        default=None,
        metavar="USD",
    )
    kc.add_argument(
        "--deployments", default=None, metavar="A,B", help="comma-separated: only these"
    )
    kc.add_argument("--expires", default=None, metavar="DURATION", help="e.g. 30d, 12h, 2w")
    flags.add_guardrails(kc)
    _store_flags(kc)
    ku = key_sub.add_parser("update", help="attach a guardrail policy to a key")
    ku.add_argument("id", help="key id (the part after 'my-')")
    flags.add_guardrails(ku, required=True)
    _store_flags(ku)
    kl = key_sub.add_parser("list", help="list keys")
    kl.add_argument("--project", default=None, help="only this project's keys")
    _store_flags(kl)
    kr = key_sub.add_parser("revoke", help="revoke a key (running servers stop it within 1 s)")
    kr.add_argument("id", help="key id (the part after 'my-')")
    _store_flags(kr)


def _add_usage(sub: SubParsers) -> None:
    usage = sub.add_parser("usage", help="usage and cost, grouped, or the per-request ledger")
    usage.add_argument("--project", default=None, help="only this project")
    usage.add_argument("--key", default=None, help="only this key id")
    usage.add_argument("--deployment", default=None, help="only this deployment")
    usage.add_argument(
        "--guardrail",
        default=None,
        metavar="GUARD",
        help="only requests with a verdict of this guard (*: of any guard)",
    )
    usage.add_argument(
        "--by",
        choices=["model", "deployment", "day", "project", "key", "status"],
        default="model",
        help="group by (status 599: interrupted, in flight on a process that was killed)",
    )
    usage.add_argument("--since", default=None, help="ISO 8601 date/time, or back: 7d, 24h")
    usage.add_argument("--until", default=None, help="ISO 8601 date/time (exclusive), or 1d")
    usage.add_argument("--csv", action="store_true", help="print CSV instead of text")
    usage.add_argument("--records", action="store_true", help="per-request rows, not groups")
    usage.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help="with --records: the first N rows, oldest first (default: 10000)",
    )
    usage.add_argument(
        "--steps",
        default=None,
        metavar="ID",
        help="one request's steps as a tree: a response's model calls and tool runs",
    )
    _store_flags(usage)


def _add_admin(sub: SubParsers) -> None:
    admin = sub.add_parser("admin", help="operator keys")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True, metavar="SUBCOMMAND")
    init = admin_sub.add_parser("init", help="create the operator key (printed once)")
    init.add_argument("--force", action="store_true", help="create one even if one exists")
    init.add_argument("--name", default="operator", help="a label for the key")
    _store_flags(init)


def _add_audit(sub: SubParsers) -> None:
    audit = sub.add_parser("audit", help="the audit log of administrative changes")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="SUBCOMMAND")
    listed = audit_sub.add_parser("list", help="list changes, oldest first")
    exported = audit_sub.add_parser("export", help="write changes as JSON lines")
    exported.add_argument(
        "--output", "-o", type=Path, default=None, help="a file (default: standard output)"
    )
    for parser in (listed, exported):
        parser.add_argument("--actor", default=None, help="key:<id>, user:<subject>, cli:<name>")
        parser.add_argument(
            "--kind", default=None, help="a kind (key.create) or a prefix ending in a dot (key.)"
        )
        parser.add_argument("--since", default=None, help="ISO 8601, or a duration back (7d)")
        parser.add_argument(
            "--limit", type=int, default=None, help="at most N entries (list: 100, export: 10000)"
        )
        flags.add_config(parser)
    flags.add_json(listed)


def _store_flags(parser: argparse.ArgumentParser) -> None:
    flags.add_config(parser)
    flags.add_json(parser)


def _add_eval(sub: SubParsers) -> None:
    group = sub.add_parser("eval", help="evaluate deployments on a dataset, compare, recommend")
    ev = group.add_subparsers(dest="eval_command", required=True, metavar="SUBCOMMAND")
    run = ev.add_parser("run", help="run a dataset (JSONL file or bundled name) on deployments")
    run.add_argument("dataset", help="a JSONL file, or a bundled dataset (see 'eval datasets')")
    run.add_argument("--deployments", required=True, metavar="A,B", help="comma-separated")
    run.add_argument("--repeat", type=int, default=1, metavar="N", help="ask every case N times")
    run.add_argument("--concurrency", type=int, default=4, metavar="N", help="calls in flight")
    run.add_argument("--retries", type=int, default=2, metavar="N", help="retries of a call")
    run.add_argument("--judge", default=None, help="deployment that grades judge/pairwise cases")
    run.add_argument("--embeddings", default="local", help="deployment for similarity cases")
    run.add_argument("--run-id", default=None, help="resume this run (or name a new one)")
    flags.add_config(run)
    flags.add_server(run)
    flags.add_json(run)
    show = ev.add_parser("show", help="show a run's report (from the store, or a .json file)")
    show.add_argument("run", help="run id (or a report .json path)")
    flags.add_json(show)
    flags.add_config(show)
    listing = ev.add_parser("list", help="list the stored runs, newest first")
    listing.add_argument("--limit", type=int, default=20, metavar="N", help="the newest N runs")
    flags.add_json(listing)
    flags.add_config(listing)
    _add_eval_shadow(ev)
    ev.add_parser("prompts", help="print the judge's prompt templates (versioned)")
    ev.add_parser("datasets", help="list the example datasets shipped with modelyard")


def _add_eval_shadow(ev: SubParsers) -> None:
    shadow = ev.add_parser("shadow", help="grade shadow traffic: primary vs candidate answers")
    shadow.add_argument("deployment", help="the deployment whose shadow traffic to grade")
    shadow.add_argument(
        "--from",
        dest="source",
        default=None,
        metavar="FILE",
        help="JSONL of shadow records (default: the store)",
    )
    flags.add_config(shadow)
    shadow.add_argument(
        "--limit",
        type=int,
        default=500,
        metavar="N",
        help="the newest N records of the store",
    )
    shadow.add_argument(
        "--mode",
        default="pairwise",
        choices=["pairwise", "judge", "similarity", "exact", "contains"],
        help="how to compare the two answers",
    )
    shadow.add_argument("--judge", default=None, help="judge deployment (pairwise, judge)")
    shadow.add_argument("--rubric", default=None, help="criteria for the judge")
    shadow.add_argument("--embeddings", default="local", help="deployment for similarity")
    shadow.add_argument("--concurrency", type=int, default=4, metavar="N", help="calls in flight")
    flags.add_server(shadow)
    flags.add_json(shadow)


def _add_learner_flags(train: argparse.ArgumentParser) -> None:
    """``router train``'s learner: text features, LSA dimensions, label (docs/router.md)."""
    train.add_argument(
        "--text-features",
        choices=("words", "chars"),
        default="words",
        help="hashed word 1-2-grams (default) or character 3-5-grams (docs/router.md)",
    )
    train.add_argument(
        "--lsa-dims",
        type=int,
        default=0,
        metavar="N",
        help="fit on the TF-IDF's top N singular directions (LSA; 0: on the buckets)",
    )
    train.add_argument(
        "--label",
        choices=("gain", "pairwise", "needed"),
        default="gain",
        help="score P(strong better) - P(weak better), two regressions (default); or learn "
        "which model won where one did (pairwise); or whether the strong one was better "
        "(needed, before; docs/router.md)",
    )


def _add_router(sub: SubParsers) -> None:
    group = sub.add_parser("router", help="train and evaluate a learned router")
    rt = group.add_subparsers(dest="router_command", required=True, metavar="SUBCOMMAND")
    train = rt.add_parser(
        "train", help="train a router on routing data (CSV files) or on stored eval runs"
    )
    source = train.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", metavar="DIR", help="routing-data folder")
    source.add_argument(
        "--runs",
        metavar="ID,ID",
        help="stored eval runs (two or more deployments graded on the same cases)",
    )
    train.add_argument(
        "--dataset",
        default=None,
        metavar="SPEC",
        help="the runs' dataset (file or bundled name; default: the name each run stored)",
    )
    flags.add_config(train)
    train.add_argument("--out", default=None, metavar="PATH", help="the artifact file to write")
    train.add_argument(
        "--name",
        default=None,
        metavar="NAME",
        help="keep the router in the store under NAME (config: router: {name: NAME})",
    )
    train.add_argument(
        "--holdout",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="share of the sources (files, e.g. MMLU subjects) held out for evaluation",
    )
    train.add_argument("--seed", type=int, default=0, help="seed of the split and the folds")
    _add_learner_flags(train)
    train.add_argument(
        "--weak", default=None, metavar="MODEL", help="the weak model's column (or deployment)"
    )
    train.add_argument(
        "--strong", default=None, metavar="MODEL", help="the strong model's column (or deployment)"
    )
    flags.add_json(train)
    ev = rt.add_parser("evaluate", help="evaluate a router on held-out routing data")
    ev.add_argument("--router", required=True, metavar="PATH", help="a trained router artifact")
    ev.add_argument("--data", required=True, metavar="DIR", help="routing-data folder")
    ev.add_argument("--html", default=None, metavar="PATH", help="also write an HTML report")
    ev.add_argument("--resamples", type=int, default=1000, metavar="N", help="bootstrap resamples")
    ev.add_argument(
        "--include-trained",
        action="store_true",
        help="also score sources the router was trained on (left out by default)",
    )
    flags.add_json(ev)
    _add_router_store(rt)


def _add_router_store(rt: Any) -> None:
    """``router list`` and ``router show``: the routers kept in the store."""
    listing = rt.add_parser("list", help="the routers in the store, with their provenance")
    listing.add_argument("--name", default=None, metavar="NAME", help="only this router's")
    flags.add_config(listing)
    flags.add_json(listing)
    show = rt.add_parser("show", help="one stored router's provenance")
    show.add_argument("name", metavar="NAME", help="the router's name (router train --name)")
    show.add_argument("--version", default=None, metavar="V", help="default: the newest")
    flags.add_config(show)
    flags.add_json(show)
