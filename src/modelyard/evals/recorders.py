"""Where case results go as soon as they exist, so an interrupted run can resume.

``MemoryRecorder`` is for tests and one-shot runs; ``JsonlRecorder`` appends one JSON line per
result to a file (the durable store the CLI uses until runs live in the database). A database
recorder implements the same ``Recorder`` protocol.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

import orjson

Key = tuple[str, str, int]


@dataclass(slots=True)
class CaseResult:
    """One graded call: a case, a deployment, a repeat."""

    case_id: str
    deployment: str
    repeat: int
    score: float = 0.0
    passed: bool = False
    reason: str = ""
    output: str = ""
    tool_calls: list[dict[str, str]] = field(default_factory=list)
    latency_s: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_micros: int | None = None
    error: str | None = None
    attempts: int = 1
    # The model declined: ``output`` is its refusal, and the grade followed the case's
    # ``on_refusal`` (``graders.REFUSAL_POLICIES``).
    refused: bool = False

    @property
    def key(self) -> Key:
        return (self.case_id, self.deployment, self.repeat)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> CaseResult:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})


def latest(results: list[CaseResult]) -> list[CaseResult]:
    """One result per key, the last recorded (a retried error replaced by its success)."""
    by_key: dict[Key, CaseResult] = {}
    for result in results:
        by_key[result.key] = result
    return list(by_key.values())


class Recorder(Protocol):
    async def completed(self, run_id: str) -> set[Key]:
        """Keys of results that need no new call (errors are not among them)."""
        ...

    async def record(self, run_id: str, result: CaseResult) -> None: ...

    async def results(self, run_id: str) -> list[CaseResult]:
        """The latest result of every key recorded for the run."""
        ...


class MemoryRecorder:
    def __init__(self) -> None:
        self.runs: dict[str, list[CaseResult]] = {}

    async def completed(self, run_id: str) -> set[Key]:
        return {r.key for r in latest(self.runs.get(run_id, [])) if r.error is None}

    async def record(self, run_id: str, result: CaseResult) -> None:
        self.runs.setdefault(run_id, []).append(result)

    async def results(self, run_id: str) -> list[CaseResult]:
        return latest(self.runs.get(run_id, []))


class JsonlRecorder:
    """Appends ``{"run_id": ..., **result}`` lines to ``path``; a torn last line is ignored."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = asyncio.Lock()

    async def completed(self, run_id: str) -> set[Key]:
        return {r.key for r in await self.results(run_id) if r.error is None}

    async def record(self, run_id: str, result: CaseResult) -> None:
        line = orjson.dumps({"run_id": run_id, **result.to_dict()}) + b"\n"
        async with self._lock:
            await asyncio.to_thread(self._append, line)

    async def results(self, run_id: str) -> list[CaseResult]:
        return latest(await asyncio.to_thread(self._read, run_id))

    def _append(self, line: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+b") as out:
            out.seek(0, 2)
            if out.tell() > 0:
                out.seek(-1, 2)
                if out.read(1) != b"\n":
                    line = b"\n" + line  # end a torn line so this one stays readable
            out.write(line)
            out.flush()

    def _read(self, run_id: str) -> list[CaseResult]:
        if not self.path.exists():
            return []
        found: list[CaseResult] = []
        for line in self.path.read_bytes().splitlines():
            try:
                raw = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # a line torn by a crash mid-write: its call is simply redone
            if isinstance(raw, dict) and raw.get("run_id") == run_id:
                found.append(CaseResult.from_dict(raw))
        return found
