"""``modelyard deployments history|rollback``: the numbered versions of a deployment.

Both read the config (``--config``/``MODELYARD_CONFIG``) and the store like ``serve`` does;
``rollback`` then asks the running server to reload, exactly as ``modelyard reload`` does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from modelyard.cli import flags
from modelyard.config import ConfigError, Settings, config_path_from_env, data_dir, load_settings

# The parsers are built for every command: SQLAlchemy and the services load only when used.
if TYPE_CHECKING:
    from modelyard.store import Store
    from modelyard.store.deployment_versions import DeploymentVersion

T = TypeVar("T")


def run_deployments(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(config_path_from_env(args.config))
    except ConfigError as exc:
        return flags.config_error(exc)
    if args.deployments_command == "history":
        return _history(args, settings)
    return _rollback(args, settings)


def _history(args: argparse.Namespace, settings: Settings) -> int:
    from modelyard.services import deployments
    from modelyard.store import StoreError

    try:
        versions = _with_store(settings, lambda store: deployments.history(store, args.name))
    except StoreError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    configured = args.name in settings.deployments
    if not versions and not configured:
        print(f"no deployment {args.name!r} in the config or the store", file=sys.stderr)
        return 1
    # The newest version is what the server applied at its last start or reload (or will
    # apply at the next); a deployment gone from the config serves nothing.
    live = versions[-1].version if versions and configured else None
    if args.json:
        rows = [_row(v, v.version == live) for v in versions]
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    if not versions:
        print(f"{args.name}: no versions recorded yet (they are recorded when the server starts)")
        return 0
    for v in versions:
        mark = "*" if v.version == live else " "
        stamp = v.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        print(f"{mark} {v.version:>4}  {stamp}  {v.source:<14} {deployments.summary(v)}")
    if live is not None:
        print(f"(* live: version {live})")
    return 0


def _row(version: DeploymentVersion, live: bool) -> dict[str, object]:
    from modelyard.services import deployments

    return {
        "version": version.version,
        "created_at": version.created_at.isoformat(),
        "source": version.source,
        "targets": deployments.summary(version),
        "live": live,
        "spec": orjson.loads(version.spec),
    }


def _rollback(args: argparse.Namespace, settings: Settings) -> int:
    from modelyard.cli.serve import PID_FILE, run_reload
    from modelyard.cli.tenancy import record_change
    from modelyard.core.errors import InvalidRequest, NotFound
    from modelyard.services import deployments
    from modelyard.store import StoreError

    async def work(store: Store) -> Any:
        added = await deployments.rollback(store, settings, args.name, args.version)
        after = {
            "deployment": args.name, "version": added.version,
            "source": f"rollback:{args.version}", "spec": deployments.summary(added),
        }  # fmt: skip
        await record_change(store, ("deployment.rollback", args.name, None, after))
        return added

    try:
        added = _with_store(settings, work)
    except (NotFound, InvalidRequest, StoreError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(
        f"{args.name}: recorded version {added.version} "
        f"(rollback to version {args.version}: {deployments.summary(added)})"
    )
    pid_file = Path(args.pid_file) if args.pid_file else data_dir() / PID_FILE
    if not _server_running(pid_file):
        print("no running server found: the rollback takes effect when the server next starts")
        return 0
    return run_reload(argparse.Namespace(pid_file=str(pid_file)))


def _server_running(pid_file: Path) -> bool:
    """A PID file naming a live process; a server killed hard leaves a stale one behind."""
    try:
        os.kill(int(pid_file.read_text().strip()), 0)
    except (OSError, ValueError):
        # Missing or unreadable file, or no such process. (EPERM would mean it exists, but the
        # server runs as the operator, who could not signal it for a reload either.)
        return False
    return True


def _with_store(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    from modelyard.store import database_url, open_store

    url = database_url(settings.store.url.reveal() if settings.store.url else None, data_dir())

    async def run() -> T:
        store = await open_store(url)
        try:
            return await work(store)
        finally:
            await store.aclose()

    return asyncio.run(run())
