"""``modelyard projects|keys update ID --guardrails NAME|off|none``: attach a guardrail policy
(by its name in the config) to a project or a key, as the operator, through ``TenancyAdmin``
like the admin API's PATCH. ``none`` detaches (the config's attachments decide again)."""

from __future__ import annotations

import argparse
from typing import Any

from modelyard.cli.tenancy import operator, print_json, shown, with_admin
from modelyard.config import Settings

NONE = "none"  # on the command line: detach (the admin API's null)


def policy_names(settings: Settings) -> list[str]:
    """What ``--guardrails`` accepts: the config's policies and ``off``."""
    return [*sorted(settings.guardrails.policies), "off"]


def checked_policy(given: str | None, settings: Settings) -> str | None:
    """``--guardrails`` as stored (``none``: None), refused (400-like) unless configured."""
    from modelyard.services.tenancy import check_policy_name

    if given is None or given == NONE:
        return None
    check_policy_name(given, policy_names(settings))
    return given


def project_update(args: argparse.Namespace, settings: Settings) -> int:
    from modelyard.services import admin_models as models

    policy = checked_policy(args.guardrails, settings)
    project = with_admin(
        settings,
        lambda a: a.set_project_guardrails(operator(), args.id, policy),
        lambda p: ("project.update", p.id, None, models.Project.of_project(p)),
    )
    if args.json:
        print_json(shown(models.Project.of_project(project)))
    else:
        print(f"project {project.id}: guardrails {project.guardrails or 'none attached'}")
    return 0


def key_update(args: argparse.Namespace, settings: Settings) -> int:
    from modelyard.services import admin_models as models
    from modelyard.services.tenancy import TenancyAdmin

    policy = checked_policy(args.guardrails, settings)

    from datetime import UTC, datetime

    async def work(admin: TenancyAdmin) -> Any:
        before = await admin.key(operator(), args.id)
        return before, await admin.update_key(operator(), args.id, before.limits, policy)

    def change(done: Any) -> Any:
        now = datetime.now(UTC)
        before, after = (models.ApiKey.of_key(k, now) for k in done)
        return ("key.update", after.id, before, after)

    _, key = with_admin(settings, work, change)
    if args.json:
        print_json(shown(models.ApiKey.of_key(key, datetime.now(UTC))))
    else:
        print(f"key {key.id}: guardrails {key.guardrails or 'none attached'}")
    return 0
