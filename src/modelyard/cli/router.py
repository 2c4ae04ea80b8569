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
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from modelyard.cli import flags
from modelyard.core.errors import InvalidRequest, ModelyardError

if TYPE_CHECKING:
    from modelyard.evals.recorders import CaseResult
    from modelyard.evals.routing_data import RoutingData
    from modelyard.evals.store_recorder import StoreRecorder


def run_router_command(args: argparse.Namespace) -> int:
    run = _train if args.router_command == "train" else _evaluate
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

    if args.runs:
        from_runs = _runs_data(args)
        result = train_from_data(from_runs, f"eval runs {args.runs}", args.holdout, args.seed)
    else:
        models = (args.weak, args.strong)
        result = train_from_dir(Path(args.data), args.holdout, args.seed, models)
    data = dumps(result.model)
    out = Path(args.out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    except OSError as exc:
        print(f"error: cannot write {out}: {exc}", file=sys.stderr)
        return flags.FAILED
    from modelyard.services.routers import loads

    header = loads(data).header
    if args.json:
        print(orjson.dumps({"out": str(out), **header}, option=orjson.OPT_INDENT_2).decode())
    else:
        print(
            f"router {header['version']} written to {out}: {header['examples']} prompts from "
            f"{len(result.trained_sources)} sources; held out: "
            f"{', '.join(result.held_out_sources) or 'none'}"
        )
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
