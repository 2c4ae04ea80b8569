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

from starlette.types import ASGIApp

from .anthropic_app import FakeState, build_app
from .fake_server import ScriptedFake
from .openai_app import RecordedRequest

__all__ = ["FakeAnthropic", "RecordedRequest"]


class FakeAnthropic(ScriptedFake[RecordedRequest]):
    """An Anthropic Messages API look-alike on loopback; see the module docstring. Its base
    URL is the server root, as an Anthropic client takes it."""

    name = "FakeAnthropic"

    def __init__(self, *, api_key: str | None = None) -> None:
        super().__init__()
        self._state = FakeState(api_key=api_key, record=self._record, script_for=self._script_for)

    def _app(self) -> ASGIApp:
        return build_app(self._state)

    @property
    def _releasable(self) -> FakeState:
        return self._state

    def clear(self) -> None:
        """Forget the recorded requests and the prompt cache."""
        super().clear()
        self._state.cache.clear()
