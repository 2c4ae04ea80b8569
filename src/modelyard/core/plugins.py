"""The one plugin mechanism: built-ins by name, plus entry points loaded when first named.

Provider types (``modelyard.providers``), graders (``modelyard.graders``) and routing strategies
(``modelyard.strategies``) are all looked up through a ``Plugins``; ``docs/plugins.md`` gives each
group's contract. The rules are the same for all:

* An entry point is imported only when a configuration (or an eval case) names it, so a broken
  plugin that nobody uses costs nothing and cannot crash startup; one that is used fails with
  its name, its entry point and the import error.
* The loaded object must meet the group's contract (``PluginKind.accept``); otherwise it is
  refused by name, before any request reaches it.
* A plugin named like a built-in is an error whenever that name is used: the name would be
  ambiguous, and silently preferring either side hides a packaging mistake.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")


class PluginError(Exception):
    """A name that cannot be used: unknown, broken, off-contract, or claimed twice."""


class EntryPointLike(Protocol):
    """What is used of ``importlib.metadata.EntryPoint`` (so tests can hand in their own)."""

    @property
    def name(self) -> str: ...

    @property
    def value(self) -> str: ...

    def load(self) -> object: ...


@dataclass(frozen=True, slots=True)
class PluginKind(Generic[T]):
    """One group of plugins: its entry-point group, what to call its members in messages, and
    its contract (``accept`` returns the loaded object as a ``T``, or None when it is not one)."""

    group: str
    noun: str
    contract: str
    accept: Callable[[object], T | None]


class Plugins(Generic[T]):
    """The members of one group by name: the built-ins, then the installed entry points."""

    def __init__(
        self,
        kind: PluginKind[T],
        builtins: Mapping[str, T],
        entries: Iterable[EntryPointLike] | None = None,
    ) -> None:
        self.kind = kind
        self._builtins = dict(builtins)
        found: Iterable[EntryPointLike] = (
            entry_points(group=kind.group) if entries is None else entries
        )
        self._entries = {ep.name: ep for ep in found}
        self._loaded: dict[str, T] = {}

    def names(self) -> list[str]:
        return sorted(self._builtins.keys() | self._entries.keys())

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __contains__(self, name: object) -> bool:
        return name in self._builtins or name in self._entries

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def get(self, name: str) -> T:
        """The member called ``name``, loading its entry point on first use."""
        entry = self._entries.get(name)
        if name in self._builtins:
            if entry is not None:
                raise PluginError(
                    f"{self.kind.noun} {name!r} is built in, and the {self.kind.group} entry "
                    f"point {entry.value} claims the same name; rename or uninstall the plugin"
                )
            return self._builtins[name]
        loaded = self._loaded.get(name)
        if loaded is not None:
            return loaded
        if entry is None:
            raise PluginError(
                f"unknown {self.kind.noun} {name!r}; known: {', '.join(self.names()) or 'none'}"
            )
        loaded = self._load(name, entry)
        self._loaded[name] = loaded
        return loaded

    def _load(self, name: str, entry: EntryPointLike) -> T:
        try:
            obj = entry.load()
        except Exception as exc:  # any import-time failure of a third-party module, by name
            raise PluginError(
                f"{self.kind.noun} {name!r} ({self.kind.group} entry point {entry.value}) "
                f"failed to load: {type(exc).__name__}: {exc}"
            ) from exc
        accepted = self.kind.accept(obj)
        if accepted is None:
            raise PluginError(
                f"{self.kind.noun} {name!r} ({self.kind.group} entry point {entry.value}) is "
                f"not {self.kind.contract}"
            )
        return accepted


__all__ = ["EntryPoint", "EntryPointLike", "PluginError", "PluginKind", "Plugins"]
