"""What a guard is, what it finds, and the verdicts a policy gives.

A *detector* scans one text and returns its findings (a category and a span); a *guard* is a
detector as a policy configures it: a name, the phases it runs in and what it does with a
finding (``block`` the call, ``redact`` the span, or ``flag``: record the verdict only). A
*policy* is guards in the order they run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, get_args

Phase = Literal["input", "output", "tool_input", "tool_output"]
Action = Literal["block", "redact", "flag"]
PHASES: tuple[Phase, ...] = get_args(Phase)
ACTIONS: tuple[Action, ...] = get_args(Action)


@dataclass(frozen=True, slots=True)
class Finding:
    """``text[start:end]`` is of ``category`` with confidence ``score`` (1.0: certain)."""

    category: str
    start: int
    end: int
    score: float = 1.0


class Detector(Protocol):
    """Scans one text; must be fast, pure and safe to call from any task."""

    def scan(self, text: str) -> list[Finding]: ...


# A guard kind: its settings (checked; a bad one raises ValueError naming it) -> a detector.
GuardKind = Callable[[Mapping[str, Any]], Detector]


@dataclass(frozen=True, slots=True)
class Guard:
    name: str
    kind: str
    phases: frozenset[Phase]
    action: Action
    detector: Detector
    # Longest text a finding of this guard can span; a stream keeps this much look-back.
    window: int = 128


@dataclass(frozen=True, slots=True)
class Policy:
    """Guards in the order they run. ``reversible``: input redactions are replaced by their
    originals in the answer to the same caller."""

    name: str
    guards: tuple[Guard, ...]
    reversible: bool = False

    def for_phase(self, phase: Phase) -> tuple[Guard, ...]:
        return tuple(g for g in self.guards if phase in g.phases)

    def window(self, phase: Phase) -> int:
        return max((g.window for g in self.for_phase(phase)), default=0)

    @property
    def waits(self) -> bool:
        """Some guard waits for a judge (``ascan``): the input is screened asynchronously."""
        return any(hasattr(g.detector, "ascan") for g in self.guards)


@dataclass(frozen=True, slots=True)
class GuardVerdict:
    """What one guard found in one phase of one call (never the content itself)."""

    guard: str
    phase: Phase
    action: Action
    category: str
    score: float
    latency_ms: float
    count: int = 1

    def brief(self) -> str:
        """The header/ledger form: ``guard:phase:action:category:score``."""
        return f"{self.guard}:{self.phase}:{self.action}:{self.category}:{self.score:.2f}"
