"""Running a policy's guards on text: whole texts, and streams with a bounded look-back.

``screen`` runs every guard of a phase on one text: a ``block`` finding raises
``ContentBlocked`` (nothing of the text goes further), ``redact`` findings become placeholders
(``[EMAIL_1]``), ``flag`` findings are only recorded. ``StreamScreen`` does the same on a
stream: it holds back the last ``window`` characters, so a finding split across deltas (a card
number in three pieces) is whole when it is judged; what it releases is final.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from modelyard.core.errors import ContentBlocked
from modelyard.guardrails.model import Finding, Guard, GuardVerdict, Phase
from modelyard.guardrails.moderation import Models

PLACEHOLDER: Final = re.compile(r"\[([A-Z][A-Z_]{0,30})_(\d{1,6})\]")
_LONGEST_PLACEHOLDER: Final = 40


class Vault:
    """One call's redactions: the same value gets the same placeholder; ``restore`` puts the
    originals back (reversible redaction, for the answer to the caller who sent them)."""

    __slots__ = ("_by_key", "_by_value", "_counts")

    def __init__(self) -> None:
        self._by_value: dict[tuple[str, str], str] = {}
        self._by_key: dict[str, str] = {}
        self._counts: dict[str, int] = {}

    def placeholder(self, category: str, value: str) -> str:
        key = (category, value)
        found = self._by_value.get(key)
        if found is None:
            label = category.upper()
            n = self._counts.get(label, 0) + 1
            self._counts[label] = n
            found = f"[{label}_{n}]"
            self._by_value[key] = found
            self._by_key[found] = value
        return found

    def __len__(self) -> int:
        return len(self._by_key)

    def restore(self, text: str) -> str:
        if not self._by_key or "[" not in text:
            return text
        return PLACEHOLDER.sub(lambda m: self._by_key.get(m.group(), m.group()), text)


@dataclass(slots=True)
class Verdicts:
    """The verdicts of one call, one per (guard, phase, category), with counts and time."""

    by_key: dict[tuple[str, Phase, str], GuardVerdict] = field(default_factory=dict)
    latency_ms: float = 0.0  # all guards' scanning time on this call

    def add(self, guard: Guard, phase: Phase, finding: Finding, ms: float) -> None:
        key = (guard.name, phase, finding.category)
        old = self.by_key.get(key)
        if old is None:
            self.by_key[key] = GuardVerdict(
                guard.name, phase, guard.action, finding.category, finding.score, ms
            )
        else:
            self.by_key[key] = GuardVerdict(
                old.guard,
                phase,
                old.action,
                old.category,
                max(old.score, finding.score),
                old.latency_ms + ms,
                old.count + 1,
            )

    def all(self) -> list[GuardVerdict]:
        return list(self.by_key.values())


Found = list[tuple[Guard, Finding, float]]


def _findings(guards: Sequence[Guard], phase: Phase, text: str, verdicts: Verdicts) -> Found:
    """Every guard's findings on ``text``; the first ``block`` one raises at once."""
    out: Found = []
    for guard in guards:
        started = time.perf_counter()
        found = guard.detector.scan(text)
        _take(guard, phase, found, (time.perf_counter() - started) * 1000.0, verdicts, out)
    return out


def _take(
    guard: Guard, phase: Phase, found: list[Finding], ms: float, verdicts: Verdicts, out: Found
) -> None:
    verdicts.latency_ms += ms
    for finding in found:
        if guard.action == "block":
            verdicts.add(guard, phase, finding, ms)
            raise ContentBlocked(guard.name, finding.category, phase)
        out.append((guard, finding, ms))


async def ascreen(
    guards: Sequence[Guard],
    phase: Phase,
    text: str,
    vault: Vault,
    verdicts: Verdicts,
    models: Models,
) -> str:
    """``screen`` for policies with guards that wait for a judge (``ascan``), in order."""
    if not guards or not text:
        return text
    out: Found = []
    for guard in guards:
        started = time.perf_counter()
        ascan = getattr(guard.detector, "ascan", None)
        found = await ascan(text, models) if ascan is not None else guard.detector.scan(text)
        _take(guard, phase, found, (time.perf_counter() - started) * 1000.0, verdicts, out)
    if not out:
        return text
    return _apply(text, out, len(text), phase, vault, verdicts)


def _apply(
    text: str,
    found: Found,
    upto: int,
    phase: Phase,
    vault: Vault,
    verdicts: Verdicts,
) -> str:
    """``text[:upto]`` with its redactions made; findings before ``upto`` are recorded."""
    parts: list[str] = []
    at = 0
    for guard, finding, ms in sorted(found, key=lambda x: x[1].start):
        if finding.start >= upto:
            break
        verdicts.add(guard, phase, finding, ms)
        if guard.action != "redact" or finding.start < at:
            continue  # flagged only, or inside a span already redacted
        parts.append(text[at : finding.start])
        parts.append(vault.placeholder(finding.category, text[finding.start : finding.end]))
        at = finding.end
    parts.append(text[at:upto])
    return "".join(parts)


def screen(
    guards: Sequence[Guard], phase: Phase, text: str, vault: Vault, verdicts: Verdicts
) -> str:
    """``text`` after the guards (raises ``ContentBlocked`` on a block)."""
    if not guards or not text:
        return text
    found = _findings(guards, phase, text, verdicts)
    if not found:
        return text
    return _apply(text, found, len(text), phase, vault, verdicts)


class StreamScreen:
    """One choice's streamed text through the guards of a phase, holding back ``window``
    characters; ``restore``: placeholders of the caller's own redacted input are put back in
    what is released."""

    __slots__ = (
        "_buf",
        "_guards",
        "_phase",
        "_restore",
        "_step",
        "_vault",
        "_verdicts",
        "_window",
    )

    def __init__(
        self,
        guards: Sequence[Guard],
        phase: Phase,
        vault: Vault,
        verdicts: Verdicts,
        restore: bool,
    ) -> None:
        self._guards = tuple(guards)
        self._phase = phase
        self._vault = vault
        self._verdicts = verdicts
        self._restore = restore
        self._window = max((g.window for g in guards), default=0) + _LONGEST_PLACEHOLDER
        self._step = self._window // 2
        self._buf = ""

    def feed(self, text: str) -> str:
        """What may be sent now ('' while everything is held back). Text is released in steps
        of half a window, so each character is scanned about three times, not once per
        delta (a stream of 4-character deltas would otherwise rescan the window each time)."""
        buf = self._buf + text
        if len(buf) < self._window + self._step:
            self._buf = buf
            return ""
        return self._release(buf, len(buf) - self._window)

    def flush(self) -> str:
        """The rest, at the end of the stream."""
        buf, self._buf = self._buf, ""
        return self._release(buf, len(buf)) if buf else ""

    def _release(self, buf: str, cut: int) -> str:
        found = _findings(self._guards, self._phase, buf, self._verdicts)
        for _guard, finding, _ms in found:
            if finding.start < cut < finding.end:
                cut = finding.start  # never release part of a finding
        if self._restore and cut < len(buf):
            opening = buf.rfind("[", max(0, cut - _LONGEST_PLACEHOLDER), cut)
            if opening >= 0 and "]" not in buf[opening:cut]:
                cut = opening  # never split a placeholder that is to be restored
        out = _apply(buf, found, cut, self._phase, self._vault, self._verdicts)
        self._buf = buf[cut:]
        return self._vault.restore(out) if self._restore else out
