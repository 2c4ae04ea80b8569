"""The one error tree of Modelyard.

Every error knows its HTTP status, a dialect-neutral ``kind`` (each served protocol maps the kind
to its own error type string), whether another attempt may succeed (``retryable``) and whether
that attempt may go to the same target again (``same_target``).
Foreign exceptions are translated into this tree once, at the boundary where they occur.

::

    ModelyardError (500, internal)
    ├── InvalidRequest (400, invalid_request)            a field of the request is wrong
    │   ├── UnsupportedCapability (400)                  the target model cannot do what is asked
    │   └── ContentBlocked (400, content_filter)         a guardrail refused the input or output
    ├── AuthenticationFailed (401, authentication)       no key, or a key we do not know
    ├── PermissionDenied (403, permission)
    ├── NotFound (404, not_found)
    │   └── ModelNotFound (404)                          names the models that exist
    ├── PayloadTooLarge (413, request_too_large)
    ├── BudgetExceeded (402, insufficient_quota)         a daily or monthly budget is spent
    ├── RateLimited (429, rate_limit, retryable)         carries retry_after
    │   ├── QueueFull (429)                              a bounded queue refused the request
    │   └── LimitExceeded (429)                          our requests/tokens per minute limit
    ├── UpstreamError (502, upstream, retryable)         the upstream failed or answered nonsense
    │   ├── UpstreamConnectionError (502)                refused, reset, closed mid-response
    │   ├── UpstreamUnavailable (503)                    overloaded or out of service
    │   └── UpstreamTimeout (504, timeout)               connect, first-token or total timeout
    ├── ToolServerError (424, tool_server)               a tool server (MCP) failed or refused
    └── InternalError (500, internal)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar


class ModelyardError(Exception):
    """Base of every error Modelyard raises on purpose."""

    status: ClassVar[int] = 500
    kind: ClassVar[str] = "internal"
    retryable: ClassVar[bool] = False
    # Whether a retry may go to the target that raised it. False when that target would answer
    # the same until the operator acts (our key refused, our account spent, no such model there):
    # another target may still be tried. Set per error by ``providers.errors.POLICY``.
    same_target: bool = True

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, param={self.param!r}, code={self.code!r})"


class InvalidRequest(ModelyardError):
    status = 400
    kind = "invalid_request"


class UnsupportedCapability(InvalidRequest):
    """The request needs something (images, tools, JSON schema...) the target cannot do."""

    def __init__(self, capability: str, model: str, *, param: str | None = None) -> None:
        super().__init__(
            f"model {model!r} does not support {capability}",
            param=param,
            code="unsupported_capability",
        )
        self.capability = capability
        self.model = model


class ContentBlocked(InvalidRequest):
    """A guardrail blocked the request (phase ``input``/``tool_output``) or the answer
    (``output``/``tool_input``): 400 with code ``content_filter``, naming guard and category.
    The message never quotes the blocked content."""

    def __init__(self, guard: str, category: str, phase: str) -> None:
        super().__init__(
            f"blocked by guardrail {guard!r} (category {category!r}) on the {phase}",
            param="messages" if phase in ("input", "tool_output") else None,
            code="content_filter",
        )
        self.guard = guard
        self.category = category
        self.phase = phase


class AuthenticationFailed(ModelyardError):
    status = 401
    kind = "authentication"


class PermissionDenied(ModelyardError):
    status = 403
    kind = "permission"


class NotFound(ModelyardError):
    status = 404
    kind = "not_found"


def clipped(text: str, limit: int = 200) -> str:
    """A client's text bounded before it is echoed or stored (a 15 MB model name must not
    come back in the error, nor go into the ledger whole)."""
    return text if len(text) <= limit else f"{text[:limit]}...({len(text)} chars)"


class ModelNotFound(NotFound):
    def __init__(self, model: str, known: list[str]) -> None:
        listed = ", ".join(sorted(known)) if known else "none"
        super().__init__(
            f"model {clipped(model)!r} does not exist; available models: {listed}",
            param="model",
            code="model_not_found",
        )
        self.model = model


class PayloadTooLarge(ModelyardError):
    status = 413
    kind = "request_too_large"


class RateLimited(ModelyardError):
    status = 429
    kind = "rate_limit"
    retryable = True


class QueueFull(RateLimited):
    pass


class _Refusal(ModelyardError):
    """One of our own limits refused the request. ``scope`` names the limited subject
    (``key:abc123``), ``limit`` which limit; ``headers`` are the ``x-ratelimit-*`` headers to
    send with the refusal, next to ``retry-after``."""

    refusal_code: ClassVar[str]

    def __init__(
        self,
        message: str,
        *,
        scope: str,
        limit: str,
        retry_after: float | None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, code=self.refusal_code, retry_after=retry_after)
        self.scope = scope
        self.limit = limit
        self.headers = dict(headers or {})


class LimitExceeded(_Refusal, RateLimited):
    """A requests- or tokens-per-minute limit of a key or project (``limit`` is ``requests`` or
    ``tokens``): 429 ``rate_limit_exceeded``."""

    refusal_code = "rate_limit_exceeded"


class BudgetExceeded(_Refusal):
    """A daily or monthly budget of a key or project is spent.

    402 with code ``insufficient_quota`` rather than 429. Waiting seconds does not help: the
    budget comes back at the next UTC day or month, or when an operator raises it. The official
    SDKs retry a 429 on their own (and many client libraries keep retrying a rate-limit error
    with backoff indefinitely), so a 429 here would turn into a retry loop against a door that
    stays shut for hours; a 402 is not retried and surfaces at once (as a generic status error
    rather than a rate-limit error), which is what the caller needs to see. The code stays the
    one OpenAI uses for quota exhaustion, so clients that look at the code still recognise it.
    ``retry_after`` is the time until the period ends.
    """

    status = 402
    kind = "insufficient_quota"
    refusal_code = "insufficient_quota"


class UpstreamError(ModelyardError):
    """The upstream failed; ``upstream_status`` is its HTTP status when it sent one."""

    status = 502
    kind = "upstream"
    retryable = True

    def __init__(
        self,
        message: str,
        *,
        upstream_status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, code=code, retry_after=retry_after)
        self.upstream_status = upstream_status


class UpstreamConnectionError(UpstreamError):
    pass


class UpstreamUnavailable(UpstreamError):
    status = 503


class UpstreamTimeout(UpstreamError):
    status = 504
    kind = "timeout"


class ToolServerError(ModelyardError):
    """A tool server the gateway runs tools on (MCP) could not be reached, listed no tools, or
    was refused by the outbound policy: 424 (Failed Dependency), as OpenAI answers for an MCP
    server it cannot list. The message names the server's label, never its secrets."""

    status = 424
    kind = "tool_server"


class InternalError(ModelyardError):
    pass
