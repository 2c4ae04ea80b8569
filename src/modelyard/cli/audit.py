"""``modelyard audit list|export``: the audit log, straight on the store.

Like ``modelyard usage``, it opens the store the server uses and reads through the same use
case and filters as ``GET /admin/v1/audit`` (the filters are checked by the same model, so a
bad ``--kind`` names the same field). ``export`` writes JSON lines, one entry per line.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from modelyard.cli import flags
from modelyard.config import ConfigError, config_path_from_env, data_dir, load_settings

if TYPE_CHECKING:
    from modelyard.services.audit import AuditEntry

LIST_LIMIT, EXPORT_LIMIT = 100, 10_000


def run_audit(args: argparse.Namespace) -> int:
    from modelyard.core.errors import InvalidRequest, ModelyardError
    from modelyard.services import audit
    from modelyard.services.admin_fields import parse

    try:
        settings = load_settings(config_path_from_env(args.config))
    except ConfigError as exc:
        return flags.config_error(exc)
    default = LIST_LIMIT if args.audit_command == "list" else EXPORT_LIMIT
    given = {"actor": args.actor, "kind": args.kind, "since": args.since}
    query: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    query["limit"] = str(args.limit if args.limit is not None else default)
    try:
        checked = parse(audit.AuditQuery, query, "query", datetime.now(UTC))
        configured = settings.store.url.reveal() if settings.store.url else None
        found = asyncio.run(audit.read_log(configured, data_dir(), checked.filter(), checked.limit))
    except InvalidRequest as exc:
        return flags.usage_error(f"audit {args.audit_command}", f"--{exc.param}: {exc.message}")
    except ModelyardError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    if args.audit_command == "export":
        return _export(found, args.output)
    if args.json:
        shown = [audit.AuditShown.of(e).model_dump(mode="json") for e in found]
        sys.stdout.write(orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    for entry in found:
        print(_line(entry))
    if not found:
        print("no audit entries match")
    return 0


def _line(entry: AuditEntry) -> str:
    at = entry.at if entry.at.tzinfo else entry.at.replace(tzinfo=UTC)
    when = at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return (
        f"{entry.seq:>6}  {when}  {entry.actor:<24} {entry.kind:<16} "
        f"{entry.target or '-':<20} from {entry.client or '-'}"
    )


def _export(found: list[AuditEntry], output: Any) -> int:
    from modelyard.services import audit

    data = b"".join(audit.json_lines(found))
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        output.write_bytes(data)
        print(f"wrote {len(found)} entries to {output}", file=sys.stderr)
    return 0
