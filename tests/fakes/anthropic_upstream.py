"""A fake Anthropic Messages API that speaks the real wire format, for tests.

``FakeAnthropic`` serves a Starlette app with uvicorn on ``127.0.0.1`` (a free port) in a
background thread; point a client at ``fake.base_url`` exactly as at ``https://api.anthropic.com``::

    with FakeAnthropic(api_key="sk-ant-test") as fake:
        client = Anthropic(base_url=fake.base_url, api_key="sk-ant-test", max_retries=0)
        client.messages.create(model="claude-x", max_tokens=64, messages=[...])
        assert fake.last_request.json["model"] == "claude-x"

Endpoints: ``POST /v1/messages`` (JSON or SSE; answers are chosen as ``anthropic_messages``
describes, events are sent as ``anthropic_stream`` describes) and ``POST
/v1/messages/count_tokens`` (``{"input_tokens": N}``). Requests are checked the way the real API
checks them (``anthropic_validate``): a missing ``anthropic-version`` header, unknown fields, a
missing ``max_tokens``... get its 400. With ``api_key`` set, a missing or different
``x-api-key`` (or ``Authorization: Bearer``, which newer SDKs send) gets its 401
``authentication_error``. Responses carry ``request-id`` and
``anthropic-organization-id``; successful ones ``anthropic-ratelimit-*`` headers.

Faults, chosen by the requested ``model``:

=================== =========================================================================
model               behaviour
=================== =========================================================================
``fail-400``        400 ``invalid_request_error``
``fail-401``        401 ``authentication_error`` (``fail-403``: ``permission_error``; ``fail-404``:
                    ``not_found_error``; ``fail-413``: ``request_too_large``)
``fail-429``        429 ``rate_limit_error`` with ``retry-after: 2`` and ``anthropic-ratelimit-*``
``fail-500``        500 ``api_error``; any other ``fail-4xx``/``fail-5xx`` gives that status
``fail-529``        529 ``overloaded_error``
``slow-N``          waits N milliseconds, then answers normally
``trickle-N``       answers normally but waits N milliseconds between stream events
``hang``            never answers; ends when the client disconnects (or the fake stops: 500)
``drop-mid-stream`` sends ``message_start``, the first block's start, ``ping`` and two deltas,
                    then drops the connection; a JSON answer is cut in half
``error-mid-stream`` the same events, then ``event: error`` (``overloaded_error``) and the end of
                    the response; a JSON answer is a 529
``no-message-stop`` the whole stream but its final ``message_stop``, then a clean end of the
                    response (JSON answers are whole)
=================== =========================================================================

For one-off behaviour, ``fake.script(model, handler)`` registers an async
``handler(request, body) -> Response`` that answers every Messages request for that model
before any of the above applies.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from types import TracebackType
from typing import Self

import uvicorn

from tests.fakes.serving import serve_in_thread

from .anthropic_app import FakeState, build_app
from .openai_app import RecordedRequest, ScriptHandler
from .openai_faults import QuietAborts

__all__ = ["FakeAnthropic", "RecordedRequest"]

_STOP_TIMEOUT = 10.0


class FakeAnthropic:
    """An Anthropic Messages API look-alike on loopback; see the module docstring."""

    def __init__(self, *, api_key: str | None = None) -> None:
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._scripts: dict[str, ScriptHandler] = {}
        self._state = FakeState(api_key=api_key, record=self._record, script_for=self._script_for)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self._log_filter = QuietAborts()

    def start(self) -> Self:
        """Serve in a background thread; returns once the port accepts connections."""
        if self._thread is not None:
            raise RuntimeError("FakeAnthropic is already running")
        self._server, self._thread, self._port = serve_in_thread(
            build_app(self._state), "fake-anthropic", self._log_filter, 2
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
            raise RuntimeError("FakeAnthropic is not running; call start() first")
        return self._port

    @property
    def base_url(self) -> str:
        """What an Anthropic client takes as its base URL: ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    url = base_url

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            if not self._requests:
                raise LookupError("FakeAnthropic has not received any request")
            return self._requests[-1]

    def clear(self) -> None:
        """Forget the recorded requests and the prompt cache."""
        with self._lock:
            self._requests.clear()
        self._state.cache.clear()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def script(self, model: str, handler: ScriptHandler) -> None:
        """Answer every Messages request for ``model`` with ``handler`` (before any check)."""
        with self._lock:
            self._scripts[model] = handler

    def _script_for(self, model: str) -> ScriptHandler | None:
        with self._lock:
            return self._scripts.get(model)
