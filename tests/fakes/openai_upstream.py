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

from collections.abc import Sequence

from starlette.types import ASGIApp

from .fake_server import ScriptedFake
from .openai_app import FakeState, RecordedRequest, ScriptHandler, build_app
from .openai_embeddings import DEFAULT_MODELS

__all__ = ["FakeOpenAI", "RecordedRequest", "ScriptHandler"]


class FakeOpenAI(ScriptedFake[RecordedRequest]):
    """An OpenAI API look-alike on loopback; see the module docstring for its behaviour."""

    name = "FakeOpenAI"
    base_path = "/v1"

    def __init__(self, *, api_key: str | None = None, models: Sequence[str] = DEFAULT_MODELS):
        super().__init__()
        self._state = FakeState(
            api_key=api_key,
            models=tuple(models),
            record=self._record,
            script_for=self._script_for,
        )

    def _app(self) -> ASGIApp:
        return build_app(self._state)

    @property
    def _releasable(self) -> FakeState:
        return self._state
