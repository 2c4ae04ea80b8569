"""Guardrails as pipeline stages: the input guards before the upstream call, the output guards
on the answer (streamed or whole), after health, usage and shadow.

A call's policy is chosen once, in the pre-call stage (key, project, deployment, default; see
``guardrails.policy``); its state (the redaction vault, the verdicts) rides on ``Run.guarded``
to the output tap. Nothing is registered when no policy is attached anywhere, so guardrails
that are off cost nothing on the request path.

Phases: ``input`` screens the text of system, developer, user and assistant messages;
``tool_output`` the tool results sent back (``tool`` messages); ``output`` the answer's text
and its refusal (``Message.refusal``, ``RefusalDelta``: the model's own words too, screened
apart from the text by the same rules); ``tool_input`` the arguments of the tool calls the
model asks for.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, NoReturn

from modelyard.core.chat import (
    ChatRequest,
    ChatResult,
    Choice,
    ContentPart,
    ImagePart,
    Message,
    TextPart,
    ToolCall,
)
from modelyard.core.embeddings import EmbeddingRequest
from modelyard.core.errors import ContentBlocked, InternalError
from modelyard.core.events import (
    Finished,
    RefusalDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    UsageReport,
)
from modelyard.guardrails.engine import StreamScreen, Vault, Verdicts, ascreen, screen
from modelyard.guardrails.model import Finding, Guard, Phase, Policy
from modelyard.guardrails.moderation import MAX_TEXT, Models
from modelyard.guardrails.policy import Attachment, Policies
from modelyard.guardrails.schema import MISMATCH, SchemaCheck
from modelyard.services.metering import Ticket
from modelyard.services.pipeline import Caller, Passed, PreStage, Run, StreamStage, Tap

log = logging.getLogger("modelyard.guardrails")
RETRY_SUFFIX = ".schema-retry"  # the request id of a schema guard's retry (never retried again)
RETRY_PROMPT = (
    "That answer does not match the required JSON schema ({problem}). "
    "Answer again with only JSON that matches the schema."
)
MAX_SCHEMA_TEXT = 1_000_000  # characters of a streamed answer kept for its schema check
JUDGE_ENDPOINT = "guardrails.judge"  # the ``endpoint`` of a judge guard's own calls
ASK_HEADER = "x-modelyard-guardrails"  # a request with it set gets the verdicts in a header
LEDGER_CHARS = 1024  # the ledger column's size


@dataclass(slots=True)
class Guarded:
    """One call's guardrail state, from the input stage to the output tap."""

    policy: Policy
    vault: Vault
    verdicts: Verdicts
    report: bool  # the client asked for the verdicts

    def summary(self) -> str | None:
        """The verdicts as the ledger and the header show them (at most 1,024 characters)."""
        if not self.verdicts.by_key:
            return None
        text = ", ".join(v.brief() for v in self.verdicts.all())
        return text if len(text) <= LEDGER_CHARS else text[: LEDGER_CHARS - 3] + "..."

    def note(self, ticket: Ticket | None) -> None:
        """The verdicts so far on the call's ticket (its ledger row, and the header when the
        client asked); called before the call's finish writes the row."""
        if ticket is not None:
            ticket.guardrails = self.summary()
            ticket.show_guardrails = self.report


class InputGuards:
    """The pre-call stage: chooses the call's policy, screens the prompt (and tool results)."""

    name: ClassVar[str] = "guards.input"

    def __init__(self, policies: Policies) -> None:
        self.policies = policies
        self._logged: set[tuple[str, str | None]] = set()  # missing policies already logged

    def _refuse(self, choice: Attachment) -> NoReturn:
        """An attached policy the config no longer has: refuse the call rather than run it
        unguarded, and log it once per attachment (this stage lives until the next reload)."""
        mark = (choice.missing or "", choice.attached_as)
        if mark not in self._logged:
            self._logged.add(mark)
            log.error(
                "guardrail policy %r attached to %s %s is not in the config; its calls are "
                "refused until the config has it again or the attachment changes",
                choice.missing,
                choice.scope,
                choice.attached_as,
            )
        raise InternalError(
            f"guardrails: the policy {choice.missing!r} attached to this {choice.scope} is not "
            f"configured on this server (configured: {', '.join(self.policies.names())}); "
            "the request is refused rather than run unguarded",
            code="guardrails_policy_missing",
        )

    async def check(self, run: Run, request: ChatRequest) -> ChatRequest:
        if run.caller.endpoint == JUDGE_ENDPOINT:
            return request  # a judge's own call: guarding it would ask the judge again
        deployment = run.deployment.name if run.deployment is not None else request.model
        principal = run.caller.principal
        choice = self.policies.choose(
            principal.key_id,
            principal.project_id,
            deployment,
            principal.key_guardrails,
            principal.project_guardrails,
        )
        policy = choice.policy
        if policy is None:
            if choice.missing is not None:
                self._refuse(choice)
            return request
        headers = run.caller.headers
        state = Guarded(
            policy, Vault(), Verdicts(), headers is not None and bool(headers(ASK_HEADER))
        )
        run.guarded = state
        try:
            messages = await _screen_messages(policy, request.messages, state, _Models(run))
        except ContentBlocked:
            _log(run, state)  # the output tap, which logs the others, will not open
            raise
        finally:
            state.note(run.ticket)
        if messages is request.messages:
            return request
        return replace(request, messages=messages)


class _Models:
    """A judge guard's calls: through the pipeline, as steps of this call (``parent_id``),
    unmetered (the judge is the operator's, not the caller's, and need not be a deployment the
    caller's key may call), never guarded themselves."""

    __slots__ = ("run",)

    def __init__(self, run: Run) -> None:
        self.run = run

    def _caller(self) -> Caller:
        caller = self.run.caller
        rid = caller.request_id
        return Caller(caller.principal, f"{rid}.judge", JUDGE_ENDPOINT, rid, metered=False)

    async def chat(self, deployment: str, prompt: str) -> str:
        request = ChatRequest(
            deployment, [Message("user", (TextPart(prompt),))], max_tokens=200, temperature=0.0
        )
        answer = await self.run.pipeline.complete(self._caller(), request)
        choices = answer.result.choices
        return choices[0].message.text() if choices else ""

    async def embed(self, deployment: str, texts: list[str]) -> list[list[float]]:
        answer = await self.run.pipeline.embed(self._caller(), EmbeddingRequest(deployment, texts))
        return answer.result.vectors


async def _screen_messages(
    policy: Policy, messages: list[Message], state: Guarded, models: Models
) -> list[Message]:
    by_phase: dict[Phase, tuple[Guard, ...]] = {
        "input": policy.for_phase("input"),
        "tool_output": policy.for_phase("tool_output"),
    }
    out: list[Message] | None = None
    for n, message in enumerate(messages):
        guards = by_phase["tool_output" if message.role == "tool" else "input"]
        if not guards:
            continue
        parts = await _screen_parts(guards, message, state, models if policy.waits else None)
        if parts is not message.content:
            if out is None:
                out = list(messages)
            out[n] = replace(message, content=parts)
    return messages if out is None else out


async def _screen_parts(
    guards: Sequence[Guard], message: Message, state: Guarded, models: Models | None
) -> tuple[ContentPart, ...]:
    """The parts with their text screened: text parts and text documents (a PDF's text is not
    readable here). A rewritten document loses the client's own block (``native``), so the
    upstream gets the rewritten text."""
    phase: Phase = "tool_output" if message.role == "tool" else "input"
    changed = False
    parts: list[ContentPart] = []
    for part in message.content:
        if isinstance(part, ImagePart) or part.text is None:
            parts.append(part)
            continue
        text = part.text
        if models is None:
            new = screen(guards, phase, text, state.vault, state.verdicts)
        else:
            new = await ascreen(guards, phase, text, state.vault, state.verdicts, models)
        if new is text:
            parts.append(part)
            continue
        changed = True
        if isinstance(part, TextPart):
            parts.append(replace(part, text=new))
        else:
            parts.append(replace(part, text=new, native=None))
    return tuple(parts) if changed else message.content


def _log(run: Run, state: Guarded) -> None:
    """One line per call with verdicts: guard, phase, action, category, score; never text."""
    if state.verdicts.by_key:
        log.info(
            "guardrails %s policy=%s verdicts=%s",
            run.caller.request_id,
            state.policy.name,
            state.summary() or "none",
        )


class OutputGuards:
    """The stream stage: screens the answer's text (``output``) and tool-call arguments
    (``tool_input``), and puts reversibly redacted input back."""

    name: ClassVar[str] = "guards.output"
    expands: ClassVar[bool] = True  # its taps hold text back and release it before a finish

    def open(self, run: Run) -> Tap | None:
        state = run.guarded
        if not isinstance(state, Guarded):
            return None
        policy = state.policy
        restore = policy.reversible and len(state.vault) > 0
        out, tools = policy.for_phase("output"), policy.for_phase("tool_input")
        tap = _OutputTap(state, run.ticket, out, tools, restore)
        if run.streamed:
            tap.judges = _judges(out)
            tap.models = _Models(run)
            tap.schemas = _schemas(out, run.request)
            tap.limit = MAX_SCHEMA_TEXT if tap.schemas else MAX_TEXT
        return tap

    async def after(self, run: Run, result: ChatResult) -> ChatResult:
        """Whole answers only: the judge guards (``moderation``), then the schema guards, each
        with its retry (``guardrails.schema``)."""
        state = run.guarded
        if not isinstance(state, Guarded):
            return result
        judges = _judges(state.policy.for_phase("output"))
        if judges:
            models = _Models(run)
            try:
                for choice in result.choices:
                    message = choice.message
                    for text in (message.text(), message.refusal):
                        if text:
                            await ascreen(
                                judges,
                                "output",
                                text[:MAX_TEXT],
                                state.vault,
                                state.verdicts,
                                models,
                            )
            finally:
                state.note(run.ticket)  # before the call's finish writes its row
        for guard in state.policy.for_phase("output"):
            check = guard.detector
            if isinstance(check, SchemaCheck):
                result = await _schema_checked(run, state, guard, check, result)
        return result


async def _schema_checked(
    run: Run, state: Guarded, guard: Guard, check: SchemaCheck, result: ChatResult
) -> ChatResult:
    fmt = run.request.response_format
    schema = check.schema or (fmt.schema if fmt is not None else None)
    if schema is None or not result.choices:
        return result
    started = time.perf_counter()
    text = result.choices[0].message.text()
    if not text and result.choices[0].message.refusal:
        # A refusal instead of JSON: what structured outputs allow a model that declines, not
        # a mismatch (a retry would press it to comply).
        return result
    problem = check.problem(text, schema)
    caller = run.caller
    if problem is not None and check.retries and not caller.request_id.endswith(RETRY_SUFFIX):
        note = Finding("schema_retried", 0, 0)
        state.verdicts.add(replace(guard, action="flag"), "output", note, 0.0)
        retry = replace(
            run.request,
            messages=[
                *run.request.messages,
                Message("assistant", (TextPart(text),)),
                Message("user", (TextPart(RETRY_PROMPT.format(problem=problem)),)),
            ],
        )
        again = Caller(
            caller.principal,
            caller.request_id + RETRY_SUFFIX,
            caller.endpoint,
            caller.request_id,
            caller.headers,
            caller.metered,
        )
        try:
            result = (await run.pipeline.complete(again, retry)).result
        except ContentBlocked as refused:  # the retry's own check (a block guard) refused it
            if refused.category != MISMATCH:
                raise
        else:
            text = result.choices[0].message.text() if result.choices else ""
            problem = check.problem(text, schema)
    if problem is not None:
        ms = (time.perf_counter() - started) * 1000.0
        state.verdicts.add(guard, "output", Finding(MISMATCH, 0, len(text)), ms)
    state.note(run.ticket)  # before the call's finish writes its row
    if problem is not None and guard.action == "block":
        raise ContentBlocked(guard.name, MISMATCH, "output")
    return result


def _judges(guards: Sequence[Guard]) -> tuple[Guard, ...]:
    """The guards that wait for a judge (``ascan``): on the output, block or flag only."""
    return tuple(g for g in guards if hasattr(g.detector, "ascan"))


Schemas = tuple[tuple[Guard, SchemaCheck, Mapping[str, Any]], ...]


def _schemas(guards: Sequence[Guard], request: ChatRequest) -> Schemas:
    """The schema guards of a stream, each with the schema it checks (its own, else the
    request's ``response_format``; neither: nothing to check)."""
    fmt = request.response_format
    asked = fmt.schema if fmt is not None else None
    out = []
    for guard in guards:
        check = guard.detector
        if isinstance(check, SchemaCheck) and (schema := check.schema or asked) is not None:
            out.append((guard, check, schema))
    return tuple(out)


class _Kept:
    """One choice's streamed text and refusal, kept for the checks at its end (up to a limit,
    the two together)."""

    __slots__ = ("chars", "parts", "refused", "whole")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.refused: list[str] = []
        self.chars = 0
        self.whole = True  # False: a piece past the limit was not kept

    def add(self, text: str, limit: int, refusal: bool = False) -> None:
        if self.chars < limit:
            (self.refused if refusal else self.parts).append(text)
            self.chars += len(text)
        else:
            self.whole = False

    def text(self) -> str:
        return "".join(self.parts)

    def refusal(self) -> str:
        return "".join(self.refused)


class _OutputTap(Tap):
    """Streams: text is held back by the policy's largest ``window`` (``StreamScreen``). With
    schema or judge guards on the output, each choice's text is kept (up to ``MAX_SCHEMA_TEXT``
    characters; ``MAX_TEXT`` for judges only) and checked once, when its finish comes, before
    the text still held goes out: a block then ends the stream with the dialect's error, and
    the held text is never sent. A schema check is synchronous; a judge is awaited (``owed``,
    ``settle``). No retry on a stream: most of the answer has gone out."""

    __slots__ = (
        "active",
        "custom_calls",
        "judges",
        "limit",
        "models",
        "out",
        "owed",
        "owing",
        "refusal_screens",
        "restore",
        "schemas",
        "screens",
        "state",
        "tails",
        "texts",
        "ticket",
        "tool_screens",
        "tools",
    )

    def __init__(
        self,
        state: Guarded,
        ticket: Ticket | None,
        out: Sequence[Guard],
        tools: Sequence[Guard],
        restore: bool,
    ) -> None:
        self.state = state
        self.ticket = ticket
        self.out = out
        self.tools = tools
        self.restore = restore
        self.active = bool(out or tools or restore)  # else: here only to log the verdicts
        self.screens: dict[int, StreamScreen] = {}
        self.refusal_screens: dict[int, StreamScreen] = {}  # a refusal's, apart from the text
        self.tool_screens: dict[tuple[int, int], StreamScreen] = {}
        # Calls of free-form tools, whose held-back input must go out as such.
        self.custom_calls: set[tuple[int, int]] = set()
        self.judges: tuple[Guard, ...] = ()  # set by ``open`` for streams
        self.models: Models | None = None
        self.schemas: Schemas = ()
        self.limit = MAX_TEXT
        self.texts: dict[int, _Kept] = {}  # per choice, what the end checks will read
        self.tails: dict[int, list[StreamEvent]] = {}  # released by the screen, not yet sent
        self.owing: list[Finished | UsageReport] = []  # endings held for the judges
        self.owed = False

    def _screen(self, index: int, screens: dict[int, StreamScreen]) -> StreamScreen:
        found = screens.get(index)
        if found is None:
            state = self.state
            found = StreamScreen(self.out, "output", state.vault, state.verdicts, self.restore)
            screens[index] = found
        return found

    def _tool_screen(self, key: tuple[int, int]) -> StreamScreen:
        found = self.tool_screens.get(key)
        if found is None:
            state = self.state
            found = StreamScreen(self.tools, "tool_input", state.vault, state.verdicts, False)
            self.tool_screens[key] = found
        return found

    def event(self, event: StreamEvent) -> Passed:
        if not self.active:
            return event
        if isinstance(event, TextDelta | ToolCallDelta | RefusalDelta):
            try:
                return self._screened(event)
            except ContentBlocked:
                self.state.note(self.ticket)  # the row is written next, with the block
                raise
        if isinstance(event, Finished | UsageReport):
            try:
                return self._ending(event)
            finally:
                self.state.note(self.ticket)
        return event

    def _screened(self, event: TextDelta | ToolCallDelta | RefusalDelta) -> Passed:
        if isinstance(event, TextDelta):
            text = self._screen(event.index, self.screens).feed(event.text)
            if self.judges or self.schemas:  # the text as the client gets it: redacted
                kept = self._kept(event.index)
                if text:
                    kept.add(text, self.limit)
            return TextDelta(text, event.index) if text else ()
        if isinstance(event, RefusalDelta):
            text = self._screen(event.index, self.refusal_screens).feed(event.text)
            if self.judges or self.schemas:
                kept = self._kept(event.index)
                if text:
                    kept.add(text, self.limit, refusal=True)
            return RefusalDelta(text, event.index) if text else ()
        if isinstance(event, ToolCallDelta) and self.tools:
            key = (event.index, event.call_index)
            if event.custom:
                self.custom_calls.add(key)
            screen_ = self._tool_screen(key)
            args = screen_.feed(event.arguments)
            if args or event.id is not None or event.name is not None:
                return replace(event, arguments=args)
            return ()
        return event

    def _kept(self, index: int) -> _Kept:
        kept = self.texts.get(index)
        if kept is None:
            kept = self.texts[index] = _Kept()
        return kept

    def _ending(self, event: Finished | UsageReport) -> Passed:
        if not self.texts:
            return self._released(event)
        ended = [event.index] if isinstance(event, Finished) else sorted(self.texts)
        for index in ended:
            kept = self.texts.get(index)
            if kept is None:
                continue
            self._hold_tail(index, kept)
            if self.schemas and (kept.parts or not kept.refused):
                self._check_schemas(kept)  # a refusal instead of JSON is not a mismatch
        if self.judges and any(i in self.texts for i in ended):
            self.owing.append(event)  # the relay awaits ``settle`` next
            self.owed = True
            return ()
        for index in ended:
            self.texts.pop(index, None)
        return self._released(event)

    def _hold_tail(self, index: int, kept: _Kept) -> None:
        """What the screen still holds back of choice ``index``, screened now, so that the
        checks and the judges read the whole text as the client would get it (redacted); it
        goes out with the ending, once they have passed it."""
        tail = self._flush(index)
        for event in tail:
            if isinstance(event, TextDelta):
                kept.add(event.text, self.limit)
            elif isinstance(event, RefusalDelta):
                kept.add(event.text, self.limit, refusal=True)
        self.tails[index] = tail

    def _check_schemas(self, kept: _Kept) -> None:
        text = kept.text()
        for guard, check, schema in self.schemas:
            started = time.perf_counter()
            problem = check.problem(text, schema) if kept.whole else "too long to check"
            if problem is not None:
                ms = (time.perf_counter() - started) * 1000.0
                self.state.verdicts.add(guard, "output", Finding(MISMATCH, 0, len(text)), ms)
                if guard.action == "block":
                    raise ContentBlocked(guard.name, MISMATCH, "output")

    async def settle(self) -> tuple[StreamEvent, ...]:
        """The judges' verdicts on the choices whose ending was held, then what they held:
        raises ``ContentBlocked`` (the dialect's error event) on a block."""
        owing, self.owing, self.owed = self.owing, [], False
        state, out = self.state, list[StreamEvent]()
        try:
            for event in owing:
                ended = [event.index] if isinstance(event, Finished) else sorted(self.texts)
                for index in ended:
                    kept = self.texts.pop(index, None)
                    if kept is None or self.models is None:
                        continue
                    for text in (kept.text(), kept.refusal()):
                        if text:
                            await ascreen(
                                self.judges,
                                "output",
                                text[:MAX_TEXT],
                                state.vault,
                                state.verdicts,
                                self.models,
                            )
                released = self._released(event)
                out.extend(released if isinstance(released, tuple) else (released,))
        finally:
            state.note(self.ticket)
        return tuple(out)

    def _released(self, event: Finished | UsageReport) -> Passed:
        if isinstance(event, Finished):
            return (*self._held(event.index), event)
        if self.screens or self.refusal_screens or self.tool_screens or self.tails:
            # Usage comes last: anything still held (no finish came) goes out before it.
            indexes = {
                *self.screens,
                *self.refusal_screens,
                *(i for i, _ in self.tool_screens),
                *self.tails,
            }
            return (*(e for i in sorted(indexes) for e in self._held(i)), event)
        return event

    def _held(self, index: int) -> list[StreamEvent]:
        """Choice ``index``'s text still held: its screened tail (``_hold_tail``) if the
        checks took it already, then whatever the screens hold."""
        return [*self.tails.pop(index, ()), *self._flush(index)]

    def _flush(self, index: int) -> list[StreamEvent]:
        held: list[StreamEvent] = []
        for (i, call), screen_ in self.tool_screens.items():
            if i == index and (args := screen_.flush()):
                custom = (i, call) in self.custom_calls
                held.append(ToolCallDelta(call, args, index=index, custom=custom))
        refusal_screen = self.refusal_screens.get(index)
        if refusal_screen is not None and (refusal := refusal_screen.flush()):
            held.insert(0, RefusalDelta(refusal, index))
        text_screen = self.screens.get(index)
        if text_screen is not None and (text := text_screen.flush()):
            held.insert(0, TextDelta(text, index))
        return held

    def result(self, result: ChatResult) -> ChatResult:
        if not self.active:
            return result
        try:
            return replace(result, choices=[self._choice(c) for c in result.choices])
        finally:
            self.state.note(self.ticket)

    def _choice(self, choice: Choice) -> Choice:
        state, message = self.state, choice.message
        text = message.text()
        new_text = self._said(text)
        refusal = message.refusal
        new_refusal = self._said(refusal) if refusal else refusal
        calls = tuple(
            ToolCall(
                c.id,
                c.name,
                screen(self.tools, "tool_input", c.arguments, state.vault, state.verdicts),
                c.custom,
            )
            for c in message.tool_calls
        )
        if new_text is text and new_refusal is refusal and calls == message.tool_calls:
            return choice
        content: tuple[ContentPart, ...] = message.content
        if new_text is not text:
            content = (TextPart(new_text),) if new_text else ()
        message = replace(message, content=content, tool_calls=calls, refusal=new_refusal)
        return replace(choice, message=message)

    def _said(self, text: str) -> str:
        """The answer's ``text`` (or refusal) after the output guards, restored if asked."""
        state = self.state
        new = screen(self.out, "output", text, state.vault, state.verdicts)
        return state.vault.restore(new) if self.restore else new

    def end(self, run: Run) -> None:
        _log(run, self.state)


class AttachedOnly:
    """The pre-call stage when the config defines no policy: a key or project the admin API
    attached a policy to (since removed from the config) is refused, not run unguarded;
    every other call passes after two attribute reads."""

    name: ClassVar[str] = "guards.attached"

    def __init__(self, policies: Policies) -> None:
        self._guards = InputGuards(policies)

    async def check(self, run: Run, request: ChatRequest) -> ChatRequest:
        principal = run.caller.principal
        if principal.key_guardrails is None and principal.project_guardrails is None:
            return request
        return await self._guards.check(run, request)


def guard_stages(policies: Policies) -> tuple[tuple[PreStage, ...], tuple[StreamStage, ...]]:
    """The guard stages for ``default_stages``. With no policy in the config only
    ``AttachedOnly`` runs, so an attachment that outlived its policy still refuses."""
    if policies.empty:
        return (AttachedOnly(policies),), ()
    return (InputGuards(policies),), (OutputGuards(),)
