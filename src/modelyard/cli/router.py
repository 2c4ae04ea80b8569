"""``modelyard router train|evaluate``: a learned router from routing data, and its figures.

``train`` reads a routing-data folder (CSV files: ``prompt`` then one boolean column per model;
MT-Bench judgements), holds out a share of its sources when asked, and writes the artifact
(``routing/model.py``) with its provenance. ``evaluate`` scores held-out data and prints PGR,
APGR, CPT(50 %), CPT(80 %), the cost saved at 95 % of the strong model's quality, the baselines
and a paired bootstrap interval against random (``--json``: keys ``apgr``, ``cpt50``,
``cpt80``, ``random_apgr``, ``n`` among others); ``--html`` writes the report page.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from modelyard.cli import flags
from modelyard.core.errors import InvalidRequest, ModelyardError

if TYPE_CHECKING:
    from modelyard.evals.recorders import CaseResult
    from modelyard.evals.routing_data import RoutingData
    from modelyard.evals.routing_eval import TrainResult
    from modelyard.evals.store_recorder import StoreRecorder
    from modelyard.services.routers import StoredRouter

T = TypeVar("T")


def run_router_command(args: argparse.Namespace) -> int:
    commands = {"train": _train, "evaluate": _evaluate, "list": _list, "show": _show}
    run = commands[args.router_command]
    try:
        return run(args)
    except ModelyardError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return flags.USAGE if exc.status < 500 else flags.FAILED
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return flags.FAILED


def _train(args: argparse.Namespace) -> int:
    from modelyard.evals.routing_eval import train_from_data, train_from_dir
    from modelyard.services.routers import dumps

    if not (args.out or args.name):
        raise InvalidRequest("say where the router goes: --out PATH, --name NAME or both")

    if args.runs:
        from_runs = _runs_data(args)
        origin = f"eval runs {args.runs}"
        result = train_from_data(
            from_runs,
            origin,
            args.holdout,
            args.seed,
            args.text_features,
            args.lsa_dims,
            args.label,
        )
    else:
        models = (args.weak, args.strong)
        result = train_from_dir(
            Path(args.data),
            args.holdout,
            args.seed,
            models,
            args.text_features,
            args.lsa_dims,
            args.label,
        )
    data = dumps(result.model)
    if args.out:
        out = Path(args.out)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
        except OSError as exc:
            print(f"error: cannot write {out}: {exc}", file=sys.stderr)
            return flags.FAILED
    from modelyard.services.routers import loads

    header = loads(data).header
    stored = None
    if args.name:
        stored = _on_store(args.config, lambda store: _stored(store, args.name, data))
    _report(args, header, result, stored)
    return flags.OK


async def _stored(store: Any, name: str, data: bytes) -> bool:
    """Store the artifact; a new version is an administrative change: audited."""
    from modelyard.cli.tenancy import record_change
    from modelyard.services.routers import store_router

    row, new = await store_router(store, name, data)
    if new:
        after = {
            "name": row.name, "version": row.version, "data_sha256": row.data_sha256,
            "weak_model": row.weak_model, "strong_model": row.strong_model,
        }  # fmt: skip
        await record_change(store, ("router.store", name, None, after))
    return new


def _report(
    args: argparse.Namespace, header: Any, result: TrainResult, stored: bool | None
) -> None:
    if args.json:
        extra = {"out": args.out, "name": args.name, "stored": stored}
        print(orjson.dumps({**extra, **header}, option=orjson.OPT_INDENT_2).decode())
        return
    where = [str(args.out)] if args.out else []
    if args.name:
        where.append(
            f"the store as {args.name!r}" + (" (already there)" if stored is False else "")
        )
    print(
        f"router {header['version']} written to {' and '.join(where)}: {header['examples']} "
        f"prompts from {len(result.trained_sources)} sources; held out: "
        f"{', '.join(result.held_out_sources) or 'none'}"
    )


def _on_store(config: str | None, work: Callable[[Any], Awaitable[T]]) -> T:
    """``work(store)`` on the server's store, opened and closed around it."""
    from modelyard.cli.eval import _store_url
    from modelyard.services.routers import on_store

    return asyncio.run(on_store(_store_url(config), work))


def _stored_json(r: StoredRouter) -> dict[str, Any]:
    return {
        "name": r.name,
        "version": r.version,
        "created_at": r.created_at.isoformat(timespec="seconds"),
        "data_sha256": r.data_sha256,
        "weak_model": r.weak_model,
        "strong_model": r.strong_model,
        "seed": r.seed,
    }


def _list(args: argparse.Namespace) -> int:
    from modelyard.services.routers import stored_routers

    found = _on_store(args.config, lambda store: stored_routers(store, args.name))
    if args.json:
        print(orjson.dumps([_stored_json(r) for r in found], option=orjson.OPT_INDENT_2).decode())
        return flags.OK
    if not found:
        print("no routers in the store (modelyard router train --name NAME)")
    for r in found:
        print(
            f"{r.name:<24} {r.version:<12} {r.created_at:%Y-%m-%d %H:%M} "
            f"weak {r.weak_model}  strong {r.strong_model}  seed {r.seed}  "
            f"data {r.data_sha256[:12]}"
        )
    return flags.OK


def _show(args: argparse.Namespace) -> int:
    from modelyard.services.routers import stored_router

    found = _on_store(args.config, lambda store: stored_router(store, args.name, args.version))
    body = {**_stored_json(found), "provenance": orjson.loads(found.provenance)}
    body["provenance"].pop("score_quantiles", None)  # 101 numbers: noise on a terminal
    print(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
    return flags.OK


def _runs_data(args: argparse.Namespace) -> RoutingData:
    """Routing data from the stored eval runs ``args.runs`` (the server's store)."""
    from modelyard.cli.eval import _with_recorder
    from modelyard.evals.datasets import DatasetError, resolve_dataset
    from modelyard.evals.routing_runs import from_runs

    ids = [r.strip() for r in args.runs.split(",") if r.strip()]

    async def read(recorder: StoreRecorder) -> list[tuple[str, str, list[CaseResult]]]:
        out = []
        for run_id in ids:
            run = await recorder.get_run(run_id)
            if run is None:
                raise InvalidRequest(f"no eval run {run_id!r} in the store", param="--runs")
            out.append((run_id, run.dataset, await recorder.results(run_id)))
        return out

    runs = _with_recorder(args.config, read)
    try:
        loaded = [(i, resolve_dataset(args.dataset or name), rs) for i, name, rs in runs]
    except DatasetError as exc:
        raise InvalidRequest(f"{exc} (name the runs' dataset with --dataset)") from exc
    return from_runs(loaded, args.weak, args.strong)


def _evaluate(args: argparse.Namespace) -> int:
    from modelyard.evals.routing_eval import evaluate

    ev = evaluate(
        Path(args.router),
        Path(args.data),
        resamples=args.resamples,
        include_trained=args.include_trained,
    )
    if args.html:
        from modelyard.evals.routing_html import render_html

        Path(args.html).write_text(render_html(ev), encoding="utf-8")
    if args.json:
        print(orjson.dumps(ev.as_json(), option=orjson.OPT_INDENT_2).decode())
    else:
        _print_text(ev.as_json())
    return flags.OK


def _print_text(j: dict[str, Any]) -> None:
    def pct(v: Any) -> str:
        return "–" if v is None else f"{100 * v:.1f} %"

    low, high = j["apgr_minus_random_ci95"]
    print(f"router  {j['router']}\ndata    {j['data']}  ({j['n']} prompts)")
    print(
        f"APGR    {j['apgr']:.3f}   random {j['random_apgr']:.3f}   oracle {j['oracle_apgr']:.3f}"
    )
    print(f"APGR - random: 95 % CI [{low:+.3f}, {high:+.3f}]  beats random: {j['beats_random']}")
    print(f"CPT(50 %) {pct(j['cpt50'])}   CPT(80 %) {pct(j['cpt80'])}")
    print(
        f"95 % of strong quality at {pct(j['share_at_95pct_quality'])} strong calls, "
        f"cost saved {pct(j['cost_saved_at_95pct_quality'])}"
    )
    print(
        f"quality: weak {pct(j['weak_quality'])}  strong {pct(j['strong_quality'])}  "
        f"oracle {pct(j['oracle_quality'])} at {pct(j['oracle_share'])} strong calls"
    )
