"""A fake Google Gemini API (``generativelanguage.googleapis.com/v1beta``) on loopback.

``FakeGemini`` speaks the real wire format: ``POST /v1beta/models/{model}:generateContent``,
``:streamGenerateContent`` (SSE with ``?alt=sse``, else one streamed JSON array) and
``:batchEmbedContents``, Google's error envelope, keys in ``x-goog-api-key`` (or ``?key=``).
With ``api_key=`` set, a missing key is 403 ``PERMISSION_DENIED`` and a wrong one 400
``INVALID_ARGUMENT`` with reason ``API_KEY_INVALID``, as Google answers. Requests are recorded
(``requests``, ``last_request`` with ``.json``, ``.headers``, ``.path``, ``.query``).

Answers are described in ``gemini_model``: ``"echo: <last user text>"``, function calls when
tools are declared, ``"tool said: ..."`` after function responses, JSON for JSON mode, thoughts
with a ``thinkingConfig``. Models named ``gemini-3*`` check thought signatures on the current
turn's function calls, as Gemini 3 does. Behaviour chosen by the model name:

==================== =======================================================================
``fail-NNN``         Google's error for that status: 400 ``INVALID_ARGUMENT``, 403
                     ``PERMISSION_DENIED`` (its text names the key), 404 ``NOT_FOUND``, 429
                     ``RESOURCE_EXHAUSTED`` with ``RetryInfo`` ``retryDelay: "13s"`` (no
                     ``Retry-After`` header, like Google), 500 ``INTERNAL``, 503 ``UNAVAILABLE``,
                     504 ``DEADLINE_EXCEEDED``
``slow-N``           waits N milliseconds, then answers normally
``hang``             never answers; ends when the client disconnects (or the fake stops)
``cached-N``         answers normally, reporting N (at most the prompt's) cached prompt tokens
``blocked-safety``   a candidate with ``finishReason: SAFETY``, ``safetyRatings``, no content
``blocked-prompt``   ``promptFeedback.blockReason: SAFETY`` and no candidates
``drop-mid-stream``  streams two chunks, then drops the connection (a JSON body: half of it)
``truncated-stream`` streams two chunks, then ends the body cleanly without a finish reason
``error-mid-stream`` streams two chunks, then an in-stream ``{"error": ...}`` event
==================== =======================================================================

For one-off behaviour, ``fake.script(model, handler)`` registers an async ``handler(request,
body) -> Response`` that answers every request for that model first.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from types import TracebackType
from typing import Self

import uvicorn

from tests.fakes.serving import serve_in_thread

from .gemini_app import build_app
from .openai_app import FakeState, RecordedRequest, ScriptHandler
from .openai_faults import QuietAborts

__all__ = ["FakeGemini", "RecordedRequest", "ScriptHandler"]

_STOP_TIMEOUT = 10.0


class FakeGemini:
    """A Gemini API look-alike on loopback; see the module docstring for its behaviour."""

    def __init__(self, *, api_key: str | None = None) -> None:
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._scripts: dict[str, ScriptHandler] = {}
        self._state = FakeState(
            api_key=api_key, models=(), record=self._record, script_for=self._script_for
        )
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self._log_filter = QuietAborts()

    def start(self) -> Self:
        """Serve in a background thread; returns once the port accepts connections."""
        if self._thread is not None:
            raise RuntimeError("FakeGemini is already running")
        self._server, self._thread, self._port = serve_in_thread(
            build_app(self._state), "fake-gemini", self._log_filter, 2
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

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeGemini is not running; call start() first")
        return self._port

    @property
    def url(self) -> str:
        """The server root, ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What a Gemini client takes as its base URL: ``http://127.0.0.1:PORT/v1beta``."""
        return f"{self.url}/v1beta"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            if not self._requests:
                raise LookupError("FakeGemini has not received any request")
            return self._requests[-1]

    def clear(self) -> None:
        """Forget the recorded requests (scripts stay registered)."""
        with self._lock:
            self._requests.clear()

    def script(self, model: str, handler: ScriptHandler) -> None:
        """Answer every request for ``model`` with ``handler``."""
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
