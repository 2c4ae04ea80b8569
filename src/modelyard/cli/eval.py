"""``modelyard eval run|show|list|shadow|prompts|datasets``: evaluations against a running server.

Runs go through the server's HTTP API like any client, so limits, the ledger and routing apply
and eval spend shows up in usage under the key's project. Runs, their per-case results and their
reports live in the server's store (the same database as the usage ledger, found like
``modelyard deployments`` finds it: ``--config``/``MODELYARD_CONFIG``, ``MODELYARD_DATABASE_URL``,
else SQLite in the data directory). Every result is written as it arrives, so ``--run-id`` of an
interrupted run resumes it without repeating finished cases. The report is also exported as
``<data dir>/evals/<run>.json`` and ``<run>.html``; ``eval show`` reads the store first and
falls back to such a file.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

import orjson

from modelyard.cli import flags
from modelyard.cli.client import auth_headers
from modelyard.config import ConfigError, data_dir
from modelyard.store import StoreError

if TYPE_CHECKING:
    from modelyard.evals.report import RunReport
    from modelyard.evals.store_recorder import Starter, StoreRecorder


def run_eval_command(args: argparse.Namespace) -> int:
    return _SUBCOMMANDS[args.eval_command](args)


def _datasets(_: argparse.Namespace) -> int:
    from modelyard.evals.datasets import bundled_datasets, load_bundled

    for name in bundled_datasets():
        print(f"{name:16} {len(load_bundled(name))} cases")
    return flags.OK


def evals_dir() -> Path:
    return data_dir() / "evals"


def _store_url(config: str | None) -> str:
    """The server's store URL, resolved as ``serve`` resolves it."""
    from modelyard.config import config_path_from_env, load_settings
    from modelyard.store import database_url

    settings = load_settings(config_path_from_env(config))
    return database_url(settings.store.url.reveal() if settings.store.url else None, data_dir())


def _run(args: argparse.Namespace) -> int:
    from modelyard.evals.datasets import DatasetError, resolve_dataset
    from modelyard.evals.graders import GraderError
    from modelyard.evals.runner import new_run_id

    deployments = [d.strip() for d in args.deployments.split(",") if d.strip()]
    if not deployments:
        return flags.usage_error("eval run", "--deployments: give at least one deployment")
    try:
        dataset = resolve_dataset(args.dataset)
        url = _store_url(args.config)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return flags.USAGE
    except ConfigError as exc:
        return flags.config_error(exc)
    run_id = args.run_id or new_run_id()
    try:
        report = asyncio.run(_run_stored(args, url, dataset, deployments, run_id))
    except KeyboardInterrupt:
        print(f"\ninterrupted; resume with --run-id {run_id}", file=sys.stderr)
        return flags.INTERRUPTED
    except (GraderError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return flags.USAGE
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return flags.FAILED
    _save_and_print(report, args.json)
    return 0


async def _run_stored(
    args: argparse.Namespace, url: str, dataset: Any, deployments: list[str], run_id: str
) -> Any:
    """Record the run in the store, run it, and store how it ended (interrupted included)."""
    from modelyard.evals.graders import GraderContext, GraderRegistry
    from modelyard.evals.store_recorder import StoreRecorder, check_storable
    from modelyard.store import open_store

    # Refuse a dataset that cannot be graded before anything is stored.
    placeholder = GraderContext(embed=_unused, complete=_unused if args.judge else None)
    GraderRegistry().check(dataset.cases, placeholder)
    check_storable(run_id, dataset.name, deployments, [c.id for c in dataset.cases])
    store = await open_store(url)
    try:
        recorder = StoreRecorder(store)
        options = {
            "repeat": args.repeat,
            "concurrency": args.concurrency,
            "retries": args.retries,
            "judge": args.judge,
            "embeddings": args.embeddings,
            "url": args.url,
            "dataset_path": dataset.path,
            "cases": len(dataset.cases),  # the portal's progress bar: results of cases
        }
        starter = await _starter(args.url, auth_headers(args.api_key))
        await recorder.save_run(run_id, dataset.name, deployments, options, starter)
        try:
            report = await _run_async(args, dataset, deployments, run_id, recorder)
        except BaseException:
            await recorder.finish_run(run_id, None, "interrupted")
            raise
        await recorder.finish_run(run_id, report, "done")
        return report
    finally:
        await store.aclose()


async def _unused(_: Any) -> Any:
    raise AssertionError("only used to check which graders a dataset needs")


async def _starter(url: str, headers: dict[str, str]) -> Starter:
    """Who the server says our key is (``/admin/v1/me``), so the run is attributed to the
    key's project; unknown (an older server, no key, the server down) attributes it to no one."""
    import aiohttp

    from modelyard.evals.store_recorder import Starter

    try:
        timeout = aiohttp.ClientTimeout(total=5)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(f"{url.rstrip('/')}/admin/v1/me", headers=headers) as resp,
        ):
            if resp.status != 200:
                return Starter()
            me = orjson.loads(await resp.read())
    except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError):
        return Starter()
    if not isinstance(me, dict):
        return Starter()
    project, key_id = me.get("project"), me.get("key_id")
    return Starter(
        project if isinstance(project, str) else None, key_id if isinstance(key_id, str) else None
    )


async def _run_async(
    args: argparse.Namespace,
    dataset: Any,
    deployments: list[str],
    run_id: str,
    recorder: StoreRecorder,
) -> Any:
    from modelyard.evals.client import ServerClient
    from modelyard.evals.graders import GraderContext
    from modelyard.evals.runner import Grading, RunOptions, judge_from_caller, run_eval

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
    from modelyard.evals.report import render_table

    path = Path(args.run)
    report: RunReport | None = None
    status = "done"
    if not (path.suffix == ".json" and path.exists()):
        try:
            found = _with_recorder(args.config, lambda rec: _stored_report(rec, args.run))
        except (StoreError, ConfigError) as exc:
            print(f"warning: cannot read the store ({exc}); looking for a file", file=sys.stderr)
            found = None
        if found is not None:
            report, status = found
        path = evals_dir() / f"{args.run}.json"
    if report is None:
        report = _report_file(path, args.run)
        if report is None:
            return 1
    if args.json:
        sys.stdout.write(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(render_table(report))
    if status != "done":
        print(
            f"run {report.run_id} is {status} ({len(report.results)} results so far); "
            f"resume it with 'modelyard eval run ... --run-id {report.run_id}'",
            file=sys.stderr,
        )
    html = path.with_suffix(".html")
    if not args.json and html.exists():
        print(f"html: {html}", file=sys.stderr)
    return 0


def _report_file(path: Path, run: str) -> RunReport | None:
    from modelyard.evals.report import RunReport

    try:
        return RunReport.from_dict(orjson.loads(path.read_bytes()))
    except FileNotFoundError:
        print(f"error: no run {run!r} in the store and no saved report ({path})", file=sys.stderr)
    except (orjson.JSONDecodeError, TypeError, KeyError) as exc:
        print(f"error: {path}: not a report: {exc}", file=sys.stderr)
    return None


async def _stored_report(recorder: StoreRecorder, run_id: str) -> tuple[RunReport, str] | None:
    run = await recorder.get_run(run_id)
    if run is None:
        return None
    return await recorder.report(run), run.status


def _with_recorder(config: str | None, work: Any) -> Any:
    """``work(recorder)`` on the server's store, opened and closed around it."""
    from modelyard.evals.store_recorder import StoreRecorder
    from modelyard.store import open_store

    url = _store_url(config)

    async def run() -> Any:
        store = await open_store(url)
        try:
            return await work(StoreRecorder(store))
        finally:
            await store.aclose()

    return asyncio.run(run())


def _list(args: argparse.Namespace) -> int:
    from modelyard.evals.store_recorder import run_json

    async def read(recorder: StoreRecorder) -> list[dict[str, Any]]:
        runs = await recorder.list_runs(limit=max(1, args.limit))
        counts = await recorder.result_counts([r.id for r in runs])
        return [run_json(r, counts.get(r.id, 0)) for r in runs]

    try:
        rows: list[dict[str, Any]] = _with_recorder(args.config, read)
    except ConfigError as exc:
        return flags.config_error(exc)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return flags.FAILED
    if args.json:
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    if not rows:
        print("no evaluation runs stored yet (start one with 'modelyard eval run')")
        return 0
    for row in rows:
        best = f"  best {row['best']}" if row["best"] else ""
        print(
            f"{row['id']:<24} {row['status']:<11} {row['created_at']}  {row['dataset']:<16} "
            f"{','.join(row['deployments'])}  {row['results']} results{best}"
        )
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
    except (OSError, orjson.JSONDecodeError, ValueError, GraderError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return flags.USAGE  # the records or the grading options are wrong
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return flags.FAILED
    except ConfigError as exc:
        return flags.config_error(exc)
    _save_and_print(report, args.json)
    return 0


def _stored_shadow_records(args: argparse.Namespace) -> list[tuple[dict[str, Any], str]]:
    """The deployment's newest shadow records from the server's store, oldest first."""
    from modelyard.store import open_store
    from modelyard.store.shadow_records import ShadowRecords

    url = _store_url(args.config)

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
                    "primary_refusal": r.primary_refusal,
                    "candidate_refusal": r.candidate_refusal,
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


def _prompts(_: argparse.Namespace) -> int:
    from modelyard.evals.judge import PROMPTS

    for prompt in PROMPTS.values():
        print(
            f"=== {prompt.id} ===\n--- system ---\n{prompt.system}\n--- user ---\n{prompt.user}\n"
        )
    return 0


_SUBCOMMANDS: Final[Mapping[str, Callable[[argparse.Namespace], int]]] = {
    "run": _run,
    "show": _show,
    "list": _list,
    "shadow": _shadow,
    "prompts": _prompts,
    "datasets": _datasets,
}
