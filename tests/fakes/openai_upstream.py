"""A fake OpenAI-compatible upstream that speaks the real wire format, for integration tests.

``FakeOpenAI`` serves a Starlette app with uvicorn on ``127.0.0.1`` (a free port) in a
background thread, so the gateway under test can be pointed at ``fake.base_url`` exactly as it
would be at ``https://api.openai.com/v1``::

    with FakeOpenAI(api_key="sk-test") as fake:
        client = OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)
        client.chat.completions.create(model="gpt-4o", messages=[...])
        assert fake.last_request.json["model"] == "gpt-4o"

Endpoints: ``POST /v1/chat/completions`` (JSON or SSE, see ``openai_chat`` for how answers are
chosen and ``openai_stream`` for the chunk sequence), ``POST /v1/embeddings`` (see
``openai_embeddings``), ``GET /v1/models`` and ``GET /v1/models/{id}``. Any other route gets
OpenAI's 404 ``Invalid URL (METHOD /path)``. With ``api_key`` set, a missing or different
``Authorization: Bearer`` key gets OpenAI's 401. Every response carries ``x-request-id``
(``req_...``), ``openai-version`` and ``openai-processing-ms``; successful POSTs also carry
``x-ratelimit-*`` headers.

Scenarios, chosen by the requested ``model`` so one server serves them all (chat and
embeddings alike unless noted):

================== ==========================================================================
model              behaviour
================== ==========================================================================
``fail-400``       400 ``invalid_request_error`` naming ``param: "temperature"``
``fail-401``       401 ``Incorrect API key provided``, code ``invalid_api_key``
``fail-403``       403 ``request_forbidden`` (unsupported region)
``fail-404``       404 ``The model `fail-404` does not exist...``, code ``model_not_found``
``fail-429``       429, type ``requests``, code ``rate_limit_exceeded``, ``retry-after: 2`` and
                   ``x-ratelimit-*`` headers (the real API's shape for an RPM limit)
``fail-500``       500 ``server_error``; any other ``fail-4xx``/``fail-5xx`` gives that status
``fail-503``       503 ``server_error`` (overloaded)
``fail-NNN-retry-S`` as ``fail-NNN`` with ``retry-after: S`` (every vendor fake takes this suffix;
                   Gemini's ``RetryInfo`` follows it)
``fail-NNN-noretry`` as ``fail-NNN`` without any retry-after (nor ``RetryInfo``)
``slow-N``         waits N milliseconds, then answers normally (before the first stream byte)
``trickle-N``      answers normally but waits N milliseconds between stream frames
``hang``           never answers; ends when the client disconnects (or the fake stops: 500)
``drop-mid-stream`` streams the role chunk and two content chunks, then drops the connection
                   without ``[DONE]``; a JSON answer is cut in half and the connection dropped
``truncated-sse``  sends the role chunk, one content chunk and half of the next frame, then
                   drops the connection (JSON answers: as ``drop-mid-stream``)
``error-mid-stream`` streams three chunks, then an in-stream ``{"error": {...}}`` event and ends
                   without ``[DONE]``, as OpenAI reports failures after the first byte
``malformed-json`` 200 whose body (or SSE ``data:``) is not JSON
================== ==========================================================================

Any other model gets a normal answer. For one-off behaviour, ``fake.script(model, handler)``
registers an async ``handler(request, body) -> Response`` that answers every chat or embeddings
request for that model before any of the above applies.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Self

import uvicorn

from tests.fakes.serving import serve_in_thread

from .openai_app import FakeState, RecordedRequest, ScriptHandler, build_app
from .openai_embeddings import DEFAULT_MODELS
from .openai_faults import QuietAborts

__all__ = ["FakeOpenAI", "RecordedRequest", "ScriptHandler"]

_STOP_TIMEOUT = 10.0


class FakeOpenAI:
    """An OpenAI API look-alike on loopback; see the module docstring for its behaviour."""

    def __init__(self, *, api_key: str | None = None, models: Sequence[str] = DEFAULT_MODELS):
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._scripts: dict[str, ScriptHandler] = {}
        self._state = FakeState(
            api_key=api_key,
            models=tuple(models),
            record=self._record,
            script_for=self._script_for,
        )
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self._log_filter = QuietAborts()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        """Serve in a background thread; returns once the port accepts connections."""
        if self._thread is not None:
            raise RuntimeError("FakeOpenAI is already running")
        self._server, self._thread, self._port = serve_in_thread(
            build_app(self._state), "fake-openai", self._log_filter, 2
        )
        return self

    def stop(self) -> None:
        """Stop serving; requests still waiting (``hang``, ``slow-N``) are released first."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        loop, closing = self._state.loop, self._state.closing
        if loop is not None and closing is not None:
            with contextlib.suppress(RuntimeError):  # the loop may already be closed
                loop.call_soon_threadsafe(closing.set)
        server.should_exit = True
        thread.join(_STOP_TIMEOUT)
        logging.getLogger("uvicorn.error").removeFilter(self._log_filter)
        self._server = self._thread = self._port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeOpenAI is not running; call start() first")
        return self._port

    @property
    def url(self) -> str:
        """The server root, ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as its base URL: ``http://127.0.0.1:PORT/v1``."""
        return f"{self.url}/v1"

    # -- recorded requests -----------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            if not self._requests:
                raise LookupError("FakeOpenAI has not received any request")
            return self._requests[-1]

    def clear(self) -> None:
        """Forget the recorded requests (scripts stay registered)."""
        with self._lock:
            self._requests.clear()

    # -- scripted answers ------------------------------------------------------------------

    def script(self, model: str, handler: ScriptHandler) -> None:
        """Answer every chat/embeddings request for ``model`` with ``handler``."""
        with self._lock:
            self._scripts[model] = handler

    def unscript(self, model: str) -> None:
        with self._lock:
            self._scripts.pop(model, None)

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _script_for(self, model: str) -> ScriptHandler | None:
        with self._lock:
            return self._scripts.get(model)
