"""Guard kinds by name: the built-ins plus the ``modelyard.guards`` entry-point group.

A guard kind is a callable taking the guard's ``settings`` (a mapping from the config) and
returning a detector: an object with ``scan(text) -> list[Finding]``. It raises ``ValueError``
naming the setting when the settings are wrong. A plugin package registers
``[project.entry-points."modelyard.guards"] mykind = "pkg.module:my_kind"``; see
``docs/guardrails.md`` and ``examples/guard_plugin/``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final, cast

from modelyard.core.plugins import EntryPointLike, PluginKind, Plugins
from modelyard.guardrails.model import Detector, GuardKind

ENTRY_POINT_GROUP: Final = "modelyard.guards"


# The built-ins import their libraries (phonenumbers, stdnum, detect-secrets) when first used,
# so a gateway without guardrails, and the CLI's --help, never load them.
def _pii(settings: Mapping[str, Any]) -> Detector:
    from modelyard.guardrails.pii import pii_guard

    return pii_guard(settings)


def _deny(settings: Mapping[str, Any]) -> Detector:
    from modelyard.guardrails.textguards import deny_guard

    return deny_guard(settings)


def _size(settings: Mapping[str, Any]) -> Detector:
    from modelyard.guardrails.textguards import size_guard

    return size_guard(settings)


def _injection(settings: Mapping[str, Any]) -> Detector:
    from modelyard.guardrails.injection import injection_guard

    return injection_guard(settings)


def _language(settings: Mapping[str, Any]) -> Detector:
    from modelyard.guardrails.language import language_guard

    return language_guard(settings)


def _moderation(settings: Mapping[str, Any]) -> Detector:
    from modelyard.guardrails.moderation import moderation_guard

    return moderation_guard(settings)


def _topics(settings: Mapping[str, Any]) -> Detector:
    from modelyard.guardrails.topics import topics_guard

    return topics_guard(settings)


def _schema(settings: Mapping[str, Any]) -> Detector:
    from modelyard.guardrails.schema import schema_guard

    return schema_guard(settings)


BUILTIN_KINDS: Final[Mapping[str, GuardKind]] = MappingProxyType(
    {
        "json_schema": _schema,
        "topics": _topics,
        "moderation": _moderation,
        "pii": _pii,
        "deny": _deny,
        "max_size": _size,
        "prompt_injection": _injection,
        "language": _language,
    }
)


def _accept(obj: object) -> GuardKind | None:
    # What it builds is checked when a policy is built (``scan`` must exist).
    return cast(GuardKind, obj) if callable(obj) else None


KIND: Final[PluginKind[GuardKind]] = PluginKind(
    ENTRY_POINT_GROUP,
    "guard kind",
    "a callable taking the guard's settings and returning an object with scan(text)",
    _accept,
)


def guard_kinds(entries: Iterable[EntryPointLike] | None = None) -> Plugins[GuardKind]:
    """The guard kinds; ``entries`` replaces the installed entry points (tests)."""
    return Plugins(KIND, BUILTIN_KINDS, entries)
