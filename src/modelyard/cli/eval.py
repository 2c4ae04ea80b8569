"""``modelyard eval run|show|shadow|prompts|datasets``: evaluations against a running server.

Runs go through the server's HTTP API like any client, so limits, the ledger and routing apply
and eval spend shows up in usage. Results are appended to ``<data dir>/evals/<run>.jsonl`` as
they arrive (``--run-id`` of an interrupted run resumes it without repeating finished cases);
the report is saved as ``<run>.json`` and ``<run>.html`` next to it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any, TextIO

import orjson

from modelyard.cli.client import auth_headers
from modelyard.config import ConfigError, data_dir
from modelyard.store import StoreError

DEFAULT_URL = "http://127.0.0.1:8700"


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = sub.add_parser("eval", help="evaluate deployments on a dataset, compare, recommend")
    ev = group.add_subparsers(dest="eval_command", required=True, metavar="SUBCOMMAND")
    run = ev.add_parser("run", help="run a dataset (JSONL file or bundled name) on deployments")
    run.add_argument("dataset", help="a JSONL file, or a bundled dataset (see 'eval datasets')")
    run.add_argument("--deployments", required=True, help="comma-separated deployment names")
    run.add_argument("--repeat", type=int, default=1, help="ask every case N times")
    run.add_argument("--concurrency", type=int, default=4, help="calls in flight at once")
    run.add_argument("--retries", type=int, default=2, help="retries of a failed call")
    run.add_argument("--judge", default=None, help="deployment that grades judge/pairwise cases")
    run.add_argument("--embeddings", default="local", help="deployment for similarity cases")
    run.add_argument("--run-id", default=None, help="resume this run (or name a new one)")
    _server_args(run)
    show = ev.add_parser("show", help="show a saved run's report")
    show.add_argument("run", help="run id (or a report .json path)")
    show.add_argument("--json", action="store_true", help="print the report as JSON")
    shadow = ev.add_parser("shadow", help="grade shadow traffic: primary vs candidate answers")
    shadow.add_argument("deployment", help="the deployment whose shadow traffic to grade")
    shadow.add_argument(
        "--from", dest="source", default=None, help="JSONL of shadow records (default: the store)"
    )
    shadow.add_argument("--config", default=None, help="modelyard.yaml, to find the store")
    shadow.add_argument("--limit", type=int, default=500, help="newest records to grade")
    shadow.add_argument(
        "--mode",
        default="pairwise",
        choices=["pairwise", "judge", "similarity", "exact", "contains"],
    )
    shadow.add_argument("--judge", default=None, help="judge deployment (pairwise, judge)")
    shadow.add_argument("--rubric", default=None, help="criteria for the judge")
    shadow.add_argument("--embeddings", default="local", help="deployment for similarity")
    shadow.add_argument("--concurrency", type=int, default=4)
    _server_args(shadow)
    ev.add_parser("prompts", help="print the judge's prompt templates (versioned)")
    ev.add_parser("datasets", help="list the example datasets shipped with modelyard")


def _server_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", default=DEFAULT_URL, help=f"running server (default {DEFAULT_URL})"
    )
    parser.add_argument("--api-key", default=None, help="key for the server (or MODELYARD_API_KEY)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")


def run_eval_command(args: argparse.Namespace) -> int:
    command = args.eval_command
    if command == "run":
        return _run(args)
    if command == "show":
        return _show(args)
    if command == "shadow":
        return _shadow(args)
    if command == "prompts":
        return _prompts()
    from modelyard.evals.datasets import bundled_datasets, load_bundled

    for name in bundled_datasets():
        print(f"{name:16} {len(load_bundled(name))} cases")
    return 0


def evals_dir() -> Path:
    return data_dir() / "evals"


def _run(args: argparse.Namespace) -> int:
    from modelyard.evals.datasets import DatasetError, resolve_dataset
    from modelyard.evals.graders import GraderError
    from modelyard.evals.runner import new_run_id

    deployments = [d.strip() for d in args.deployments.split(",") if d.strip()]
    if not deployments:
        print("error: --deployments: give at least one deployment", file=sys.stderr)
        return 2
    try:
        dataset = resolve_dataset(args.dataset)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    run_id = args.run_id or new_run_id()
    try:
        report = asyncio.run(_run_async(args, dataset, deployments, run_id))
    except KeyboardInterrupt:
        print(f"\ninterrupted; resume with --run-id {run_id}", file=sys.stderr)
        return 130
    except (GraderError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _save_and_print(report, args.json)
    return 0


async def _run_async(
    args: argparse.Namespace, dataset: Any, deployments: list[str], run_id: str
) -> Any:
    from modelyard.evals.client import ServerClient
    from modelyard.evals.graders import GraderContext
    from modelyard.evals.recorders import JsonlRecorder
    from modelyard.evals.runner import Grading, RunOptions, judge_from_caller, run_eval

    recorder = JsonlRecorder(evals_dir() / f"{run_id}.jsonl")
    options = RunOptions(
        run_id=run_id, repeat=args.repeat, concurrency=args.concurrency, retries=args.retries
    )
    async with ServerClient(args.url, auth_headers(args.api_key)) as client:
        context = GraderContext(
            embed=client.embedder(args.embeddings),
            complete=judge_from_caller(client, args.judge) if args.judge else None,
        )
        bars = ProgressBars(deployments, sys.stderr)
        try:
            report = await run_eval(
                dataset,
                deployments,
                client,
                recorder=recorder,
                options=options,
                progress=bars.update,
                grading=Grading(context=context),
            )
        finally:
            bars.close()
    report.meta = {"dataset_path": dataset.path, "url": args.url, "judge": args.judge}
    return report


class ProgressBars:
    """One bar per deployment, redrawn in place on a terminal; plain lines otherwise."""

    def __init__(self, deployments: list[str], out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self.state: dict[str, tuple[int, int]] = dict.fromkeys(deployments, (0, 0))
        self.width = max(len(d) for d in deployments)
        self.drawn = False
        self.last_tenth: dict[str, int] = {}

    def update(self, deployment: str, done: int, total: int) -> None:
        self.state[deployment] = (done, total)
        if self.tty:
            self._draw()
            return
        tenth = done * 10 // total if total else 10
        if self.last_tenth.get(deployment) != tenth:
            self.last_tenth[deployment] = tenth
            print(f"{deployment}: {done}/{total}", file=self.out, flush=True)

    def _draw(self) -> None:
        if self.drawn:
            self.out.write(f"\x1b[{len(self.state)}F")
        for name, (done, total) in self.state.items():
            filled = 30 * done // total if total else 30
            bar = "█" * filled + "·" * (30 - filled)
            self.out.write(f"\x1b[2K{name.ljust(self.width)}  {bar}  {done}/{total}\n")
        self.out.flush()
        self.drawn = True

    def close(self) -> None:
        if self.tty and self.drawn:
            self.out.flush()


def _save_and_print(report: Any, as_json: bool) -> None:
    from modelyard.evals.html import render_html
    from modelyard.evals.report import render_table

    folder = evals_dir()
    folder.mkdir(parents=True, exist_ok=True)
    data = orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2)
    (folder / f"{report.run_id}.json").write_bytes(data)
    html_path = folder / f"{report.run_id}.html"
    html_path.write_text(render_html(report), encoding="utf-8")
    if as_json:
        sys.stdout.write(data.decode() + "\n")
    else:
        print(render_table(report))
    print(f"report: {folder / report.run_id}.json, {html_path}", file=sys.stderr)


def _show(args: argparse.Namespace) -> int:
    from modelyard.evals.report import RunReport, render_table

    path = Path(args.run)
    if not (path.suffix == ".json" and path.exists()):
        path = evals_dir() / f"{args.run}.json"
    try:
        report = RunReport.from_dict(orjson.loads(path.read_bytes()))
    except FileNotFoundError:
        print(f"error: no saved report for run {args.run!r} ({path})", file=sys.stderr)
        return 1
    except (orjson.JSONDecodeError, TypeError, KeyError) as exc:
        print(f"error: {path}: not a report: {exc}", file=sys.stderr)
        return 1
    if args.json:
        sys.stdout.write(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(render_table(report))
        print(f"html: {path.with_suffix('.html')}", file=sys.stderr)
    return 0


def _shadow(args: argparse.Namespace) -> int:
    from modelyard.evals.graders import GraderError
    from modelyard.evals.shadow import ShadowPair

    try:
        if args.source is None:
            raws = _stored_shadow_records(args)
        else:
            lines = Path(args.source).read_bytes().splitlines()
            raws = [
                (orjson.loads(line), f"{args.source}:{i}")
                for i, line in enumerate(lines, start=1)
                if line.strip()
            ]
        if not raws:
            print(f"no shadow records for deployment {args.deployment!r}", file=sys.stderr)
            return 1
        pairs = [ShadowPair.from_mapping(raw, where) for raw, where in raws]
        report = asyncio.run(_shadow_async(args, pairs))
    except (OSError, orjson.JSONDecodeError, ValueError, GraderError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    _save_and_print(report, args.json)
    return 0


def _stored_shadow_records(args: argparse.Namespace) -> list[tuple[dict[str, Any], str]]:
    """The deployment's newest shadow records from the server's store, oldest first."""
    from modelyard.config import config_path_from_env, load_settings
    from modelyard.store import database_url, open_store
    from modelyard.store.shadow_records import ShadowRecords

    settings = load_settings(config_path_from_env(args.config))
    url = database_url(settings.store.url.reveal() if settings.store.url else None, data_dir())

    async def read() -> list[tuple[dict[str, Any], str]]:
        store = await open_store(url)
        try:
            async with store.transaction() as session:
                found = await ShadowRecords(session).list(args.deployment, limit=args.limit)
        finally:
            await store.aclose()
        return [
            (
                {
                    "id": r.request_id,
                    "request": orjson.loads(r.request),
                    "primary_output": r.primary_output,
                    "candidate_output": r.candidate_output,
                    "primary_latency_s": r.primary_latency_ms / 1000,
                    "candidate_latency_s": r.candidate_latency_ms / 1000,
                    "primary_cost_micros": r.primary_cost_micros,
                    "candidate_cost_micros": r.candidate_cost_micros,
                    "candidate_error": r.candidate_error,
                },
                f"shadow record {r.request_id}",
            )
            for r in found
        ]

    return asyncio.run(read())


async def _shadow_async(args: argparse.Namespace, pairs: list[Any]) -> Any:
    from modelyard.evals.client import ServerClient
    from modelyard.evals.graders import GraderContext
    from modelyard.evals.runner import Grading, judge_from_caller, new_run_id
    from modelyard.evals.shadow import ShadowOptions, evaluate_shadow

    async with ServerClient(args.url, auth_headers(args.api_key)) as client:
        context = GraderContext(
            embed=client.embedder(args.embeddings),
            complete=judge_from_caller(client, args.judge) if args.judge else None,
        )
        options = ShadowOptions(
            mode=args.mode,
            rubric=args.rubric,
            concurrency=args.concurrency,
            name=f"shadow:{args.deployment}",
            run_id=f"shadow-{args.deployment}-{new_run_id()}",
        )
        return await evaluate_shadow(pairs, Grading(context=context), options)


def _prompts() -> int:
    from modelyard.evals.judge import PROMPTS

    for prompt in PROMPTS.values():
        print(
            f"=== {prompt.id} ===\n--- system ---\n{prompt.system}\n--- user ---\n{prompt.user}\n"
        )
    return 0
