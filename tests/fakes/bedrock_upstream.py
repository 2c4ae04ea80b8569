"""A fake AWS Bedrock Runtime that speaks the real wire formats and checks SigV4 signatures.

``FakeBedrock`` serves on ``127.0.0.1`` (a free port) in a background thread, like
``FakeOpenAI``; point an adapter at ``fake.base_url`` instead of
``https://bedrock-runtime.{region}.amazonaws.com``::

    with FakeBedrock() as fake:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY)   # and the secret
        provider = BedrockProvider(ProviderSettings("br", "bedrock", base_url=fake.base_url), ...)

Every request must be signed (SigV4, service ``bedrock``, the fake's region, its known test
credentials) or carry its Bedrock API key as a bearer token; the signature is recomputed from
the bytes that arrived (see ``bedrock_sigv4``) and a mismatch gets 403
``InvalidSignatureException``, an unknown key id 403 ``UnrecognizedClientException``.

Endpoints: ``POST /model/{modelId}/converse`` (JSON), ``/converse-stream`` (the binary event
stream, ``application/vnd.amazon.eventstream``, frames with real CRCs, see ``bedrock_frames``)
and ``/invoke`` (Titan Text Embeddings V1/V2 bodies). See ``bedrock_converse`` for the
validation, the answers and the token counts. Errors carry ``x-amzn-ErrorType``.

Faults, chosen by the model id:

======================== ===================================================================
model id                 behaviour
======================== ===================================================================
``fail-NNN``             that status with its exception (400 ValidationException, 403
                         AccessDeniedException, 404 ResourceNotFoundException, 408
                         ModelTimeoutException, 424 ModelErrorException, 429
                         ThrottlingException, 500 InternalServerException, 503
                         ServiceUnavailableException)
``slow-N``               waits N milliseconds, then answers normally
``hang``                 never answers; ends when the client disconnects (or the fake stops)
``exception-mid-stream`` streams messageStart and two deltas, then a ``throttlingException``
                         frame, and ends (JSON answers are normal)
``drop-mid-stream``      streams messageStart and two deltas, then drops the connection (a
                         JSON answer is cut in half and the connection dropped)
``truncated-stream``     streams everything but the final ``metadata`` event and ends cleanly
``...cache-hit...``      normal answer whose usage reports cache reads and writes
======================== ===================================================================
"""

from __future__ import annotations

import contextlib
import logging
import threading
from types import TracebackType
from typing import Self

import uvicorn

from tests.fakes.serving import serve_in_thread

from .bedrock_app import BedrockApp, BedrockRequest, FakeBedrockState
from .bedrock_sigv4 import Credentials
from .openai_faults import QuietAborts

__all__ = ["TEST_ACCESS_KEY", "TEST_REGION", "TEST_SECRET_KEY", "BedrockRequest", "FakeBedrock"]

# The example credentials of the AWS documentation: obviously not real, and the right shape.
TEST_ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
TEST_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TEST_REGION = "us-east-1"
_STOP_TIMEOUT = 10.0


class FakeBedrock:
    """A Bedrock Runtime look-alike on loopback; see the module docstring for its behaviour."""

    def __init__(
        self,
        *,
        access_key: str = TEST_ACCESS_KEY,
        secret_key: str = TEST_SECRET_KEY,
        session_token: str | None = None,
        region: str = TEST_REGION,
        api_key: str | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._requests: list[BedrockRequest] = []
        self._state = FakeBedrockState(
            credentials=Credentials(access_key, secret_key, session_token),
            region=region,
            api_key=api_key,
            record=self._record,
        )
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self._log_filter = QuietAborts()

    def start(self) -> Self:
        """Serve in a background thread; returns once the port accepts connections."""
        if self._thread is not None:
            raise RuntimeError("FakeBedrock is already running")
        self._server, self._thread, self._port = serve_in_thread(
            BedrockApp(self._state), "fake-bedrock", self._log_filter, 2
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
            raise RuntimeError("FakeBedrock is not running; call start() first")
        return self._port

    @property
    def base_url(self) -> str:
        """What replaces ``https://bedrock-runtime.{region}.amazonaws.com``."""
        return f"http://127.0.0.1:{self.port}"

    url = base_url

    @property
    def requests(self) -> list[BedrockRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> BedrockRequest:
        with self._lock:
            if not self._requests:
                raise LookupError("FakeBedrock has not received any request")
            return self._requests[-1]

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def _record(self, request: BedrockRequest) -> None:
        with self._lock:
            self._requests.append(request)
