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

from starlette.types import ASGIApp

from .fake_server import ScriptedFake
from .gemini_app import build_app
from .openai_app import FakeState, RecordedRequest, ScriptHandler

__all__ = ["FakeGemini", "RecordedRequest", "ScriptHandler"]


class FakeGemini(ScriptedFake[RecordedRequest]):
    """A Gemini API look-alike on loopback; see the module docstring for its behaviour."""

    name = "FakeGemini"
    base_path = "/v1beta"

    def __init__(self, *, api_key: str | None = None) -> None:
        super().__init__()
        self._state = FakeState(
            api_key=api_key, models=(), record=self._record, script_for=self._script_for
        )

    def _app(self) -> ASGIApp:
        return build_app(self._state)

    @property
    def _releasable(self) -> FakeState:
        return self._state
