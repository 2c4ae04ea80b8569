"""The one upstream-error policy: facts about a failed upstream call → the client's core error.

Adapters decide no policy. Each reduces a vendor's failure (an HTTP error status with its body,
or an error event after a stream began) to an ``UpstreamFailure``: the status, the vendor's own
error code, its message, its request id, the delay it asked for, and whether the stream had
started. Only where the vendor's code says more than its status does an adapter name a
``cause`` (Gemini reports a bad key as 400 ``API_KEY_INVALID``; Bedrock a quota as 400
``ServiceQuotaExceededException``). ``to_error`` then looks the cause up in ``POLICY``, the one
table of what the client sees and whether another attempt may succeed; ``docs/errors.md`` gives
the reason for every row. Retryability is the class's ``retryable``: ``routing.retry`` reads
nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from modelyard.core.errors import (
    InvalidRequest,
    ModelyardError,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)

Cause = Literal[
    "invalid_request",  # the client's input: it can fix it, another target would refuse it too
    "too_large",  # the client's input is too big for the upstream
    "credentials",  # our key or its permissions
    "account",  # our account: billing, balance, region, plan
    "not_found",  # the operator's model name is wrong for this upstream
    "timeout",  # the upstream gave up or took too long
    "conflict",  # a transient conflict upstream (409)
    "rate_limited",  # our quota with the upstream, for now
    "unavailable",  # overloaded or out of service
    "model_error",  # the model itself failed on this input
    "server",  # any other failure of the upstream
]


@dataclass(frozen=True, slots=True)
class UpstreamFailure:
    """What an adapter knows about one failed upstream call, before any policy."""

    # The HTTP status, or for an in-stream error the status the vendor documents for its code;
    # None when neither is known.
    status: int | None
    message: str
    vendor_code: str | None = None
    request_id: str | None = None
    retry_after: float | None = None
    stream_started: bool = False
    # The upstream's name for the offending request field, when it gave one.
    param: str | None = None
    # Set only when the vendor's code says more than the status does.
    cause: Cause | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the policy: the core error class, its ``code``, whether the upstream's text
    reaches the client, and whether a retry may go to the same target (``same_target``)."""

    error: type[ModelyardError]
    code: str
    relay_text: bool = True
    same_target: bool = True

    @property
    def retryable(self) -> bool:
        return self.error.retryable


POLICY: Final[Mapping[Cause, Rule]] = {
    "invalid_request": Rule(InvalidRequest, "upstream_rejected"),
    "too_large": Rule(InvalidRequest, "request_too_large"),
    # These three fail over to another target, never back to the same one: it would answer the
    # same until the operator fixes its key, account or model name.
    "credentials": Rule(UpstreamError, "upstream_auth", relay_text=False, same_target=False),
    "account": Rule(UpstreamError, "upstream_account", same_target=False),
    "not_found": Rule(UpstreamError, "upstream_not_found", same_target=False),
    "timeout": Rule(UpstreamTimeout, "upstream_timeout"),
    "conflict": Rule(UpstreamError, "upstream_conflict"),
    "rate_limited": Rule(RateLimited, "upstream_rate_limited"),
    "unavailable": Rule(UpstreamUnavailable, "upstream_unavailable"),
    "model_error": Rule(UpstreamError, "upstream_model_error"),
    "server": Rule(UpstreamError, "upstream_error"),
}

_BY_STATUS: Final[Mapping[int, Cause]] = {
    401: "credentials",
    402: "account",
    403: "credentials",
    404: "not_found",
    408: "timeout",
    409: "conflict",
    413: "too_large",
    424: "model_error",
    429: "rate_limited",
    503: "unavailable",
    504: "timeout",
    529: "unavailable",
}


def cause_of(status: int | None) -> Cause:
    """The cause an HTTP status stands for when the vendor says nothing more precise."""
    if status is None:
        return "server"
    cause = _BY_STATUS.get(status)
    if cause is not None:
        return cause
    return "invalid_request" if 400 <= status < 500 else "server"


def to_error(failure: UpstreamFailure, label: str, secrets: Sequence[str] = ()) -> ModelyardError:
    """The core error the client sees for ``failure`` (``label`` names the provider; none of
    ``secrets``, the provider's key and header values, appears in the text, even in a shape
    ``redact`` does not know)."""
    cause = failure.cause or cause_of(failure.status)
    rule = POLICY[cause]
    shown = f"HTTP {failure.status}" if failure.status is not None else "an error"
    if failure.vendor_code:
        shown = f"{shown} {failure.vendor_code}"
    when = " after the stream began" if failure.stream_started else ""
    suffix = f" (upstream request id {failure.request_id})" if failure.request_id else ""
    if rule.relay_text:
        relayed = redact(scrub(failure.message, secrets))
        text = f"{label}: upstream answered {shown}{when}: {relayed}{suffix}"
    else:
        # Our key is at fault, not the client's request; the upstream's text can quote key
        # fragments and account ids and means nothing to the client.
        text = f"{label}: the upstream refused the gateway's credentials ({shown}){when}{suffix}"
    text = scrub(text, secrets)  # the request id and vendor code are the upstream's too
    retry_after = failure.retry_after if rule.retryable else None
    if rule.error is InvalidRequest:
        return InvalidRequest(text, param=failure.param, code=rule.code)
    if rule.error is RateLimited:
        return RateLimited(text, code=rule.code, retry_after=retry_after)
    if issubclass(rule.error, UpstreamError):
        error = rule.error(
            text, upstream_status=failure.status, code=rule.code, retry_after=retry_after
        )
        error.same_target = rule.same_target
        return error
    return rule.error(text, code=rule.code, retry_after=retry_after)


# What reading an answer raises when the upstream sent something we cannot read: bytes that
# are not UTF-8 (``UnicodeDecodeError``), bodies that are not JSON (``orjson.JSONDecodeError``),
# a usage count that is not a number, a field missing or of the wrong type.
UNREADABLE: Final = (ValueError, TypeError, KeyError, IndexError, AttributeError)


def unreadable(label: str, exc: BaseException, *, stream_started: bool = False) -> UpstreamError:
    """The client's error for an answer that could not be read: the upstream failed (502,
    retried elsewhere before the first event). Only the exception's type is shown: its text
    may quote the upstream's bytes."""
    when = " after the stream began" if stream_started else ""
    return UpstreamError(
        f"{label}: the upstream sent an answer that cannot be read{when} ({type(exc).__name__})",
        code="upstream_malformed",
    )


# Things that look like credentials: vendor key prefixes, AWS access key ids, bearer tokens,
# "key: value" pairs naming a key, and long mixed-case alphanumeric runs (opaque tokens).
_SECRET = re.compile(
    r"""
    (?:sk|pk|rk|gsk|xai|key)[-_][A-Za-z0-9_\-*.]{6,}
    | AIza[0-9A-Za-z_\-]{20,}
    | A[SK]IA[0-9A-Z]{12,}
    | (?i:bearer)\s+[A-Za-z0-9._~+/=\-]{8,}
    | (?i:api[_-]?key|access[_-]?key|secret|token|consumer)['"]?\s*[:=]\s*['"]?[^\s'",;]{4,}
    | (?=[A-Za-z0-9+/_\-]*[0-9])(?=[A-Za-z0-9+/_\-]*[a-z])(?=[A-Za-z0-9+/_\-]*[A-Z])
      [A-Za-z0-9+/_\-]{32,}
    """,
    re.VERBOSE,
)
_MAX_MESSAGE = 500
# How much of a text is searched for credentials before it is cut to ``_MAX_MESSAGE``: enough
# that a token straddling the cut is still whole when it is matched.
_SEARCHED = 4 * _MAX_MESSAGE
# A secret shorter than this is not searched for: it would match ordinary words.
MIN_SECRET = 8


def redact(text: str) -> str:
    """``text`` cut to a sane length with anything that looks like a credential replaced
    (replaced first, so that a credential cut in two cannot show its first half)."""
    return _SECRET.sub("[redacted]", text[:_SEARCHED])[:_MAX_MESSAGE]


def scrub(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every one of ``secrets`` (our own credentials) replaced."""
    for secret in secrets:
        if len(secret) >= MIN_SECRET and secret in text:
            text = text.replace(secret, "[redacted]")
    return text


def secrets_of(api_key: str | None, headers: Mapping[str, str]) -> tuple[str, ...]:
    """What a provider must never show: its key and the values of its configured headers
    (custom auth headers; a harmless value redacted too costs nothing)."""
    found = [api_key] if api_key else []
    found += [value for value in headers.values() if value]
    found += [value.split(" ", 1)[1] for value in found if " " in value]  # "Basic abc"
    return tuple(sorted({v for v in found if len(v) >= MIN_SECRET}, key=len, reverse=True))
