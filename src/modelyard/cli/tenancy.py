"""``modelyard projects|keys|usage|admin``: projects, API keys and usage, straight on the store.

The CLI acts as the operator: whoever can read the config and the store may administer them,
as with ``modelyard deployments``. It opens the store the server uses (``--config`` or
``MODELYARD_CONFIG``, ``MODELYARD_DATABASE_URL``, else SQLite in the data directory) and goes
through the same ``TenancyAdmin`` use cases as the admin API. Every write bumps the store's
tenancy generation: running servers accept a new key at once and refuse a revoked one within
their next poll (0.5 s).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from modelyard.cli import flags
from modelyard.config import ConfigError, Settings, config_path_from_env, data_dir, load_settings

if TYPE_CHECKING:
    from pydantic import BaseModel

    from modelyard.services.tenancy import TenancyAdmin
    from modelyard.tenancy.model import ApiKey, Limits

T = TypeVar("T")
M = TypeVar("M", bound="BaseModel")


def run_tenancy(args: argparse.Namespace) -> int:
    from modelyard.core.errors import InvalidRequest, ModelyardError

    if args.command == "usage":
        if args.csv and args.json:
            return flags.usage_error("usage", "choose one of --json and --csv")
        if args.limit is not None and not args.records:
            return flags.usage_error("usage", "--limit counts rows of --records: add --records")
    try:
        settings = load_settings(config_path_from_env(args.config))
    except ConfigError as exc:
        return flags.config_error(exc)
    try:
        return _dispatch(args, settings)
    except ModelyardError as exc:  # the store's errors included: one line, no traceback
        print(f"error: {exc.message}", file=sys.stderr)
        # An invalid request is a value of the command line the use case refused (a bad id,
        # budget or duration, a project that exists): a usage error, as the admin API's 400.
        return flags.USAGE if isinstance(exc, InvalidRequest) else flags.FAILED


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    from modelyard.cli import tenancy_usage

    if args.command == "usage":
        return tenancy_usage.run_usage(args, lambda work: with_admin(settings, work))
    if args.command == "admin":
        return _admin_init(args, settings)
    from modelyard.cli import tenancy_guardrails

    if args.command == "projects":
        if args.projects_command == "update":
            return tenancy_guardrails.project_update(args, settings)
        if args.projects_command == "create":
            return _project_create(args, settings)
        return _project_list(args, settings)
    if args.keys_command == "update":
        return tenancy_guardrails.key_update(args, settings)
    if args.keys_command == "create":
        return _key_create(args, settings)
    if args.keys_command == "list":
        return _key_list(args, settings)
    return _key_revoke(args, settings)


# What a command changed, for the audit log: kind, target id, the views before and after.
Change = tuple[str, str | None, "BaseModel | None", "BaseModel | None"]


def with_admin(
    settings: Settings,
    work: Callable[[TenancyAdmin], Awaitable[T]],
    audit: Callable[[T], Change | None] | None = None,
) -> T:
    """Open the store, run ``work`` with the use cases, record what ``audit`` says it changed
    in the audit log (as ``cli:<user>``, no client address), close the store."""
    from modelyard.services.tenancy import TenancyAdmin
    from modelyard.store import database_url, open_store

    url = database_url(settings.store.url.reveal() if settings.store.url else None, data_dir())

    async def run() -> T:
        store = await open_store(url)
        try:
            done = await work(TenancyAdmin(store))
            change = audit(done) if audit is not None else None
            if change is not None:
                await record_change(store, change)
            return done
        finally:
            await store.aclose()

    return asyncio.run(run())


async def record_change(store: Any, change: Change | tuple[str, str | None, Any, Any]) -> None:
    """Append a change the CLI made to the audit log, as ``cli:<the OS user>``."""
    import getpass

    from modelyard.services import audit

    try:
        who = getpass.getuser()
    except (OSError, KeyError):  # no user name in this environment (a bare container)
        who = "unknown"
    kind, target, before, after = change
    entry = audit.entry_of(f"cli:{who}", kind, target, _now(), change=(before, after))
    await audit.record(store, entry)


def operator() -> Any:
    from modelyard.tenancy.keys import Principal

    return Principal(key_id="cli", role="operator")


def print_json(payload: Any) -> None:
    sys.stdout.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode() + "\n")


def _limit_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The limit options given, under the admin API's field names."""
    fields = {
        "rpm": args.rpm,
        "tpm": args.tpm,
        "daily_budget_usd": args.budget_day,
        "monthly_budget_usd": args.budget_month,
    }
    return {k: v for k, v in fields.items() if v is not None}


def _checked(model: type[M], fields: dict[str, Any]) -> M:
    """The options read through the admin API's own request model (the same checks)."""
    from modelyard.services.admin_fields import parse

    return parse(model, {k: v for k, v in fields.items() if v is not None}, "body")


def shown(model: BaseModel) -> Any:
    """A response model as the JSON the admin API sends."""
    return model.model_dump(mode="json")


def _limits_text(limits: Limits) -> str:
    from modelyard.services.admin_models import usd

    parts = []
    if limits.rpm is not None:
        parts.append(f"rpm {limits.rpm}")
    if limits.tpm is not None:
        parts.append(f"tpm {limits.tpm}")
    if limits.daily_budget_micros is not None:
        parts.append(f"${usd(limits.daily_budget_micros)}/day")
    if limits.monthly_budget_micros is not None:
        parts.append(f"${usd(limits.monthly_budget_micros)}/month")
    return ", ".join(parts) or "no limits"


def _project_create(args: argparse.Namespace, settings: Settings) -> int:
    from modelyard.cli.tenancy_guardrails import checked_policy
    from modelyard.services import admin_models as models

    fields = {"id": args.id, "description": args.description or None, **_limit_fields(args)}
    body = _checked(models.ProjectCreate, fields)
    policy = checked_policy(args.guardrails, settings)
    project = with_admin(
        settings,
        lambda a: a.create_project(operator(), body.id, body.description, body.limits(), policy),
        lambda p: ("project.create", p.id, None, models.Project.of_project(p)),
    )
    if args.json:
        print_json(shown(models.Project.of_project(project)))
    else:
        print(f"created project {project.id} ({_limits_text(project.limits)})")
    return 0


def _project_list(args: argparse.Namespace, settings: Settings) -> int:
    from modelyard.services import admin_models as models

    found = with_admin(settings, lambda a: a.projects(operator()))
    if args.json:
        print_json([shown(models.Project.of_project(p)) for p in found])
        return 0
    if not found:
        print("no projects yet: modelyard projects create ID")
    for p in found:
        print(f"{p.id:<24} {_limits_text(p.limits):<40} {p.description or ''}".rstrip())
    return 0


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def _warn_unknown(names: tuple[str, ...] | None, settings: Settings) -> None:
    """The config's deployments (and the local model's) are checked, but only warned about:
    a key may be made ahead of a deployment the config gains later."""
    known = set(settings.deployments)
    if settings.local.enabled:
        from modelyard.local.paths import DEFAULT_MODEL_NAME

        known |= {"local", DEFAULT_MODEL_NAME, *settings.local.models}
    for name in names or ():
        if name not in known:
            print(f"note: deployment {name!r} is not in the config (yet)", file=sys.stderr)


def _key_create(args: argparse.Namespace, settings: Settings) -> int:
    from modelyard.services import admin_models as models

    listed = None
    if args.deployments is not None:
        listed = [n.strip() for n in args.deployments.split(",") if n.strip()]
    fields = {
        "project": args.project,
        "role": args.role,
        "name": args.name or None,
        "deployments": listed,
        "expires_in": args.expires or None,
        **_limit_fields(args),
    }
    from modelyard.cli.tenancy_guardrails import checked_policy

    fields["guardrails"] = checked_policy(args.guardrails, settings)
    spec = _checked(models.KeyCreate, fields).spec()
    _warn_unknown(spec.deployments, settings)
    key, fresh = with_admin(
        settings,
        lambda a: a.create_key(operator(), spec),
        lambda made: ("key.create", made[0].id, None, models.ApiKey.of_key(made[0], _now())),
    )
    if args.json:
        print_json(shown(models.NewApiKey.of_new(key, fresh.secret, _now())))
        return 0
    print(f"created {_key_summary(key)}")
    print(f"\n    {fresh.secret}\n")
    print(models.ONCE_WARNING)
    print("Running servers accept it at once.")
    return 0


def _key_summary(key: ApiKey) -> str:
    from modelyard.services.admin_models import stamp

    where = f"in project {key.project_id}" if key.project_id else "(no project)"
    parts = [f"{key.role} key {key.id} {where}", _limits_text(key.limits)]
    if key.deployments:
        parts.append("deployments " + ",".join(key.deployments))
    if key.expires_at is not None:
        parts.append(f"expires {stamp(key.expires_at)}")
    return "; ".join(parts)


def _key_list(args: argparse.Namespace, settings: Settings) -> int:
    from modelyard.services import admin_models as models
    from modelyard.services.admin_fields import parse

    project = parse(models.KeysQuery, {"project": args.project}, "query").project
    found = with_admin(settings, lambda a: a.keys(operator(), project))
    now = _now()
    if args.json:
        print_json([shown(models.ApiKey.of_key(k, now)) for k in found])
        return 0
    if not found:
        print("no keys" + (f" in project {project}" if project else ""))
    for k in found:
        status = models.key_status(k, now)
        print(f"{k.id}  {status:<8} {_key_summary(k)}" + (f"  [{k.name}]" if k.name else ""))
    return 0


def _key_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from modelyard.services import admin_models as models
    from modelyard.services.admin_fields import parse

    key_id = parse(models.KeyPath, {"key_id": args.id}, "query").key_id
    key = with_admin(
        settings,
        lambda a: a.revoke_key(operator(), key_id),
        lambda k: ("key.revoke", k.id, None, models.ApiKey.of_key(k, _now())),
    )
    if args.json:
        print_json(shown(models.ApiKey.of_key(key, _now())))
        return 0
    print(f"revoked key {key.id}; running servers refuse it within 0.5 s (their next poll)")
    return 0


def _admin_init(args: argparse.Namespace, settings: Settings) -> int:
    from modelyard.services import admin_models as models

    spec = _checked(models.KeyCreate, {"role": "operator", "name": args.name}).spec()
    now = _now()

    async def work(admin: TenancyAdmin) -> tuple[Any, list[ApiKey]]:
        if not args.force:
            keys = await admin.keys(operator(), None)
            live = [
                k for k in keys if k.role == "operator" and models.key_status(k, now) == "active"
            ]
            if live:
                return None, live
        return await admin.create_key(operator(), spec), []

    def change(done: tuple[Any, list[ApiKey]]) -> Change | None:
        if done[0] is None:
            return None
        made = done[0][0]
        return ("key.create", made.id, None, models.ApiKey.of_key(made, now))

    created, existing = with_admin(settings, work, change)
    if created is None:
        if args.json:
            shown_keys = [shown(models.ApiKey.of_key(k, now)) for k in existing]
            print_json({"created": False, "existing": shown_keys})
        ids = ", ".join(k.id for k in existing)
        print(f"an operator key exists already ({ids}); --force makes another", file=sys.stderr)
        return 0
    key, fresh = created
    if args.json:
        print_json({"created": True, **shown(models.NewApiKey.of_new(key, fresh.secret, now))})
        return 0
    print(f"created operator key {key.id}\n\n    {fresh.secret}\n")
    print(models.ONCE_WARNING)
    print("Send it as 'Authorization: Bearer <key>' to /admin/v1 on servers using this store.")
    return 0
