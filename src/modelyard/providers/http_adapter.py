"""The I/O every HTTP adapter shares, written once: post, status check, stream, decode, close.

An adapter is a codec on top of ``HttpAdapter``. It supplies what differs between wire APIs:

* ``failure(status, headers, body)``: an error response reduced to facts (``UpstreamFailure``);
  the policy that turns facts into the client's error is ``providers.errors``, not the adapter's;
* ``stream_call(request, model, ctx)``: the outgoing request and a ``StreamReader`` that turns
  decoded frames (SSE events, AWS event-stream frames) into core events;
* ``chat``/``embed``: build the body, ``await self.exchange(...)``, parse the answer;
* ``sign`` (with ``SIGNS = True``), when a request must be signed over its final bytes
  (Bedrock's SigV4).

The base owns the rest: the transport call, the status check, the frame loop, and closing the
upstream connection when the stream ends, fails or is abandoned by the client (closing, not
releasing, so that the upstream stops generating).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, NoReturn, Protocol, TypeVar

from yarl import URL

from modelyard.core.chat import ChatRequest
from modelyard.core.errors import ModelyardError
from modelyard.core.events import StreamEvent
from modelyard.providers.base import CallContext, Provider, ProviderSettings
from modelyard.providers.errors import (
    UNREADABLE,
    UpstreamFailure,
    scrub,
    secrets_of,
    to_error,
    unreadable,
)
from modelyard.providers.transport import RawResponse, Transport

F = TypeVar("F")
F_co = TypeVar("F_co", covariant=True)
F_contra = TypeVar("F_contra", contravariant=True)


class FrameDecoder(Protocol[F_co]):
    """Turns the body's bytes, as they arrive, into whole frames."""

    def feed(self, chunk: bytes) -> Iterable[F_co]: ...


class StreamReader(Protocol[F_contra]):
    """One stream's state: frames in, core events out. ``done`` turns true at the wire API's
    last frame; ``end`` is asked at the end of the body and either gives the closing events or
    raises because the stream ended too early."""

    @property
    def done(self) -> bool: ...

    def event(self, frame: F_contra) -> Iterable[StreamEvent]: ...

    def end(self) -> Iterable[StreamEvent]: ...


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One request to send: ``url`` as a ``yarl.URL(encoded=True)`` when its bytes are signed."""

    url: str | URL
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class StreamCall(Generic[F]):
    request: Outgoing
    decoder: FrameDecoder[F]
    reader: StreamReader[F]


class HttpAdapter(Provider):
    """A provider reached over HTTP through the shared transport (see the module docstring)."""

    # True when ``sign`` must see each request; the others skip the call on the request path.
    SIGNS: ClassVar[bool] = False

    def __init__(self, settings: ProviderSettings, transport: Transport) -> None:
        super().__init__(settings, transport)
        self.label = self.error_label()  # made once: every request and error names the provider
        self.secrets = secrets_of(settings.api_key, settings.headers)

    @abstractmethod
    def failure(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamFailure: ...

    @abstractmethod
    def stream_call(self, request: ChatRequest, model: str, ctx: CallContext) -> StreamCall[Any]:
        """The streamed request for ``request`` and the reader of its frames."""

    async def sign(self, request: Outgoing) -> Mapping[str, str]:
        """The headers to send for ``request``; unchanged unless the adapter signs requests."""
        return request.headers

    def error(self, failure: UpstreamFailure) -> ModelyardError:
        """The client's error for ``failure`` (with this provider's key kept out of its text)."""
        return to_error(failure, self.label, self.secrets)

    async def exchange(self, request: Outgoing, ctx: CallContext) -> RawResponse:
        """Send ``request`` and return a successful response; an error status is raised."""
        headers = await self.sign(request) if self.SIGNS else request.headers
        if ctx.traceparent is not None:  # after signing: the signature does not cover it
            headers = {**headers, "traceparent": ctx.traceparent}
        resp = await self.transport.post(
            request.url, headers, request.body, self.timeouts(ctx), self.label
        )
        if not 200 <= resp.status < 300:
            raise self.error(self.failure(resp.status, resp.headers, resp.body))
        return resp

    async def stream(
        self, request: ChatRequest, model: str, ctx: CallContext
    ) -> AsyncIterator[StreamEvent]:
        batches = self.stream_batches(request, model, ctx)
        try:
            async for batch in batches:
                for event in batch:
                    yield event
        finally:
            await batches.aclose()  # type: ignore[attr-defined]  # an async generator

    async def stream_batches(
        self, request: ChatRequest, model: str, ctx: CallContext
    ) -> AsyncIterator[list[StreamEvent]]:
        call = self.stream_call(request, model, ctx)
        out = call.request
        headers = await self.sign(out) if self.SIGNS else out.headers
        if ctx.traceparent is not None:
            headers = {**headers, "traceparent": ctx.traceparent}
        upstream = await self.transport.open_stream(
            out.url, headers, out.body, self.timeouts(ctx), self.label
        )
        try:
            if not 200 <= upstream.status < 300:
                payload = await upstream.read_all()
                raise self.error(self.failure(upstream.status, upstream.headers, payload))
            decoder, reader = call.decoder, call.reader
            started = False
            while chunk := await upstream.next_chunk():
                batch, failure = _read(decoder, reader, chunk)
                if batch:
                    started = True
                    yield batch  # the events before a failure in the same read come first
                if failure is not None:
                    self._fail(failure, started)
                if reader.done:
                    return
            batch, failure = _read(decoder, reader, None)
            if batch:
                yield batch
            if failure is not None:
                self._fail(failure, started)
        finally:
            upstream.close()

    def _fail(self, exc: BaseException, started: bool) -> NoReturn:
        """Raise what a failure while reading the stream becomes: bad bytes, JSON or fields
        mean the upstream failed; an in-stream error event's text is relayed, scrubbed of our
        secrets."""
        if isinstance(exc, ModelyardError):
            exc.message = scrub(exc.message, self.secrets)
            exc.args = (exc.message,)
            raise exc
        raise unreadable(self.label, exc, stream_started=started) from exc


def _read(
    decoder: FrameDecoder[Any], reader: StreamReader[Any], chunk: bytes | None
) -> tuple[list[StreamEvent], BaseException | None]:
    """The events of one read (``chunk``; None: the end of the body, the reader's closing
    events), up to the wire API's last frame, and the failure that cut them short, if one did."""
    batch: list[StreamEvent] = []
    try:
        if chunk is None:
            batch += reader.end()
            return batch, None
        for frame in decoder.feed(chunk):
            batch += reader.event(frame)
            if reader.done:
                break
    except (*UNREADABLE, ModelyardError) as exc:
        return batch, exc
    return batch, None
