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
from typing import Final, cast

from modelyard.core.plugins import EntryPointLike, PluginKind, Plugins
from modelyard.guardrails.injection import injection_guard
from modelyard.guardrails.model import GuardKind
from modelyard.guardrails.pii import pii_guard
from modelyard.guardrails.textguards import deny_guard, size_guard

ENTRY_POINT_GROUP: Final = "modelyard.guards"

BUILTIN_KINDS: Final[Mapping[str, GuardKind]] = MappingProxyType(
    {
        "pii": pii_guard,
        "deny": deny_guard,
        "max_size": size_guard,
        "prompt_injection": injection_guard,
    }
)


def _accept(obj: object) -> GuardKind | None:
    # What it builds is checked when a policy is built (``scan`` must exist).
    return cast(GuardKind, obj) if callable(obj) else None


KIND: Final = PluginKind[GuardKind](
    ENTRY_POINT_GROUP,
    "guard kind",
    "a callable taking the guard's settings and returning an object with scan(text)",
    _accept,
)


def guard_kinds(entries: Iterable[EntryPointLike] | None = None) -> Plugins[GuardKind]:
    """The guard kinds; ``entries`` replaces the installed entry points (tests)."""
    return Plugins(KIND, BUILTIN_KINDS, entries)
