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

from starlette.types import ASGIApp

from .bedrock_app import BedrockApp, BedrockRequest, FakeBedrockState
from .bedrock_sigv4 import Credentials
from .fake_server import FakeServer

__all__ = ["TEST_ACCESS_KEY", "TEST_REGION", "TEST_SECRET_KEY", "BedrockRequest", "FakeBedrock"]

# The example credentials of the AWS documentation: obviously not real, and the right shape.
TEST_ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
TEST_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TEST_REGION = "us-east-1"


class FakeBedrock(FakeServer[BedrockRequest]):
    """A Bedrock Runtime look-alike on loopback; see the module docstring for its behaviour.
    Its base URL (the server root) replaces ``https://bedrock-runtime.{region}.amazonaws.com``."""

    name = "FakeBedrock"

    def __init__(
        self,
        *,
        access_key: str = TEST_ACCESS_KEY,
        secret_key: str = TEST_SECRET_KEY,
        session_token: str | None = None,
        region: str = TEST_REGION,
        api_key: str | None = None,
    ) -> None:
        super().__init__()
        self._state = FakeBedrockState(
            credentials=Credentials(access_key, secret_key, session_token),
            region=region,
            api_key=api_key,
            record=self._record,
        )

    def _app(self) -> ASGIApp:
        return BedrockApp(self._state)

    @property
    def _releasable(self) -> FakeBedrockState:
        return self._state
