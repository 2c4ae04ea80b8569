"""Region, endpoint and request authentication for Bedrock Runtime.

Two ways in, as the AWS docs describe them: a Bedrock API key sent as ``Authorization: Bearer``
(``settings.api_key``, else the ``AWS_BEARER_TOKEN_BEDROCK`` variable the AWS SDKs read), or AWS
credentials from botocore's usual chain (environment, profiles, SSO, container and instance
roles) with every request signed by botocore's own SigV4 signer for service ``bedrock``.

Resolving the chain may read files or call the instance-metadata endpoint, so it runs in a
thread, once; refreshable credentials (roles) are refreshed in a thread too when botocore says
they are due. Signing itself is a few HMACs and stays on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol

from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError  # type: ignore[import-untyped]
from botocore.session import Session  # type: ignore[import-untyped]
from yarl import URL

from modelyard.core.errors import UpstreamError

DEFAULT_REGION = "us-east-1"
SIGNING_NAME = "bedrock"  # the service's signing name; its endpoint prefix is bedrock-runtime
API_KEY_ENV = "AWS_BEARER_TOKEN_BEDROCK"


def resolve_region(options: Mapping[str, object], environ: Mapping[str, str]) -> str:
    """The ``region`` option, else ``AWS_REGION``/``AWS_DEFAULT_REGION``, else us-east-1."""
    option = options.get("region")
    if isinstance(option, str) and option:
        return option
    return environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def endpoint(region: str) -> str:
    return f"https://bedrock-runtime.{region}.amazonaws.com"


class Authenticator(Protocol):
    async def headers_for(
        self, url: URL, headers: Mapping[str, str], body: bytes
    ) -> dict[str, str]:
        """``headers`` plus whatever authenticates this exact request."""
        ...


class BearerAuth:
    """A Bedrock API key; the same header for every request."""

    def __init__(self, api_key: str) -> None:
        self._authorization = f"Bearer {api_key}"

    async def headers_for(
        self, url: URL, headers: Mapping[str, str], body: bytes
    ) -> dict[str, str]:
        return {**headers, "authorization": self._authorization}


class SigV4Signer:
    """Signs each request with credentials from botocore's chain, resolved on first use."""

    def __init__(self, region: str, label: str) -> None:
        self.region = region
        self._label = label
        self._credentials: Any = None
        self._lock = asyncio.Lock()

    async def headers_for(
        self, url: URL, headers: Mapping[str, str], body: bytes
    ) -> dict[str, str]:
        frozen = await self._frozen_credentials()
        # The URL is signed exactly as it will go on the wire (already percent-encoded); botocore
        # encodes the path once more for the canonical request, as SigV4 wants for non-S3 services.
        request = AWSRequest(method="POST", url=str(url), data=body, headers=dict(headers))
        SigV4Auth(frozen, SIGNING_NAME, self.region).add_auth(request)
        return {name: str(value) for name, value in request.headers.items()}

    async def _frozen_credentials(self) -> Any:
        credentials = self._credentials
        if credentials is None:
            async with self._lock:
                if self._credentials is None:
                    self._credentials = await self._resolve()
                credentials = self._credentials
        refresh_needed = getattr(credentials, "refresh_needed", None)
        try:
            if refresh_needed is not None and refresh_needed():
                return await asyncio.to_thread(credentials.get_frozen_credentials)
            return credentials.get_frozen_credentials()
        except BotoCoreError as exc:
            raise UpstreamError(
                f"{self._label}: refreshing the AWS credentials failed ({type(exc).__name__})"
            ) from exc

    async def _resolve(self) -> Any:
        try:
            credentials = await asyncio.to_thread(_chain_credentials)
        except BotoCoreError as exc:
            raise UpstreamError(
                f"{self._label}: resolving AWS credentials failed ({type(exc).__name__})"
            ) from exc
        if credentials is None:
            raise UpstreamError(
                f"{self._label}: no AWS credentials found; set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or a profile or role), or give the provider a Bedrock "
                "API key"
            )
        return credentials


def _chain_credentials() -> Any:
    return Session().get_credentials()


def make_authenticator(
    api_key: str | None, region: str, label: str, environ: Mapping[str, str]
) -> Authenticator:
    key = api_key or environ.get(API_KEY_ENV)
    if key:
        return BearerAuth(key)
    return SigV4Signer(region, label)
