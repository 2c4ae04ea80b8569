"""Server-side checking of the credentials on a request to the fake Bedrock.

SigV4 is checked the way AWS does it: the ``Authorization`` header names the access key, the
credential scope (date/region/service/aws4_request), the signed headers and the signature; the
server rebuilds the canonical request from what actually arrived (the raw path as sent, the
signed headers' values, a hash of the body) and recomputes the signature with the secret it
knows, here with botocore's ``SigV4Auth``. Any difference between what the client signed and
what went on the wire (a re-encoded path, a changed header, another body) fails the check.
A Bedrock API key (``Authorization: Bearer``) is accepted when the fake was given one.
"""

from __future__ import annotations

import datetime
import hmac
import re
from dataclasses import dataclass

from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.credentials import ReadOnlyCredentials  # type: ignore[import-untyped]

SERVICE = "bedrock"
MAX_CLOCK_SKEW = datetime.timedelta(minutes=5)
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/\s]+)/(?P<date>\d{8})/(?P<region>[^/\s]+)/"
    r"(?P<service>[^/\s]+)/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})"
)
_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check "
    "your AWS Secret Access Key and signing method. Consult the service documentation for "
    "details."
)


@dataclass(frozen=True, slots=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str | None = None


@dataclass(frozen=True, slots=True)
class Denial:
    """Why a request is refused: the exception name AWS reports and its message (always 403)."""

    error: str
    message: str


@dataclass(frozen=True, slots=True)
class Arrived:
    """A request as it reached the server, byte for byte where it matters."""

    method: str
    raw_path: str
    query: str
    headers: dict[str, str]  # lower-case names
    body: bytes


def check(
    request: Arrived, credentials: Credentials, region: str, api_key: str | None
) -> Denial | None:
    authorization = request.headers.get("authorization", "")
    if not authorization:
        return Denial("MissingAuthenticationTokenException", "Missing Authentication Token")
    if authorization.startswith("Bearer "):
        token = authorization.removeprefix("Bearer ").strip()
        if api_key is not None and hmac.compare_digest(token, api_key):
            return None
        return Denial("UnrecognizedClientException", "Invalid API Key format or value.")
    match = _AUTHORIZATION.fullmatch(authorization.strip())
    if match is None:
        return Denial("IncompleteSignatureException", "Authorization header is malformed.")
    return _check_sigv4(request, match, credentials, region)


def _check_sigv4(
    request: Arrived, match: re.Match[str], credentials: Credentials, region: str
) -> Denial | None:
    if match["key"] != credentials.access_key:
        return Denial(
            "UnrecognizedClientException", "The security token included in the request is invalid."
        )
    if match["service"] != SERVICE or match["region"] != region:
        return Denial(
            "InvalidSignatureException",
            f"Credential should be scoped to a valid region and to service '{SERVICE}'.",
        )
    denial = _check_date(request.headers.get("x-amz-date", ""), match["date"])
    if denial is not None:
        return denial
    if credentials.token is not None and request.headers.get("x-amz-security-token") != (
        credentials.token
    ):
        return Denial(
            "UnrecognizedClientException", "The security token included in the request is invalid."
        )
    signed = match["signed"].split(";")
    if (
        "host" not in signed
        or "x-amz-date" not in signed
        or any(name not in request.headers for name in signed)
    ):
        return Denial("InvalidSignatureException", _MISMATCH)
    expected = _signature(request, signed, credentials, region)
    if not hmac.compare_digest(expected, match["signature"]):
        return Denial("InvalidSignatureException", _MISMATCH)
    return None


def _check_date(amz_date: str, scope_date: str) -> Denial | None:
    try:
        when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
    except ValueError:
        return Denial("IncompleteSignatureException", "X-Amz-Date is missing or malformed.")
    if not amz_date.startswith(scope_date):
        return Denial("InvalidSignatureException", "Date in Credential scope does not match.")
    now = datetime.datetime.now(datetime.UTC)
    if abs(now - when) > MAX_CLOCK_SKEW:
        return Denial("InvalidSignatureException", "Signature expired.")
    return None


def _signature(request: Arrived, signed: list[str], credentials: Credentials, region: str) -> str:
    host = request.headers["host"]
    url = f"http://{host}{request.raw_path}" + (f"?{request.query}" if request.query else "")
    headers = {name: request.headers[name] for name in signed}
    rebuilt = AWSRequest(method=request.method, url=url, data=request.body, headers=headers)
    rebuilt.context["timestamp"] = request.headers["x-amz-date"]
    frozen = ReadOnlyCredentials(credentials.access_key, credentials.secret_key, credentials.token)
    signer = SigV4Auth(frozen, SERVICE, region)
    canonical = signer.canonical_request(rebuilt)
    return str(signer.signature(signer.string_to_sign(rebuilt, canonical), rebuilt))
