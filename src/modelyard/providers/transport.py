"""The single place that talks to upstreams over HTTP.

Pooled keep-alive connections (one aiohttp session per gateway process), the three timeouts
(connect, first token, total), streaming bodies, Retry-After parsing, and the translation of
client exceptions into core errors. No vendor logic lives here.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import time
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
from yarl import URL

from modelyard.core.errors import UpstreamConnectionError, UpstreamError, UpstreamTimeout
from modelyard.core.timeouts import CallTimeouts


@functools.lru_cache(maxsize=256)  # a config holds a handful; both types are immutable
def _client_timeout(timeouts: CallTimeouts) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(
        total=timeouts.total, sock_connect=timeouts.connect, sock_read=timeouts.first_token
    )


@dataclass(slots=True)
class RawResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


class UpstreamStream:
    """An open streamed response: status and headers are known, the body is still coming."""

    def __init__(self, response: aiohttp.ClientResponse, label: str) -> None:
        self._response = response
        self._label = label
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers

    async def read_all(self) -> bytes:
        try:
            return await self._response.read()
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise _translate(exc, self._label) from exc
        finally:
            self._response.release()

    async def next_chunk(self) -> bytes:
        """The body's next piece as it arrived; ``b""`` at its end.

        A method, not an async generator: a caller that stops early (at the stream's last
        event) leaves nothing to finalize, where an unfinished generator is closed by the
        loop's finalizer hook, a thread-safe wakeup and a task per stream.
        """
        try:
            return await self._response.content.readany()
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise _translate(exc, self._label) from exc

    def close(self) -> None:
        # Closing (not releasing) drops the connection, which cancels generation upstream.
        self._response.close()


class Transport:
    """Upstream HTTP calls. A ``str`` URL is normalised by yarl (``%3A`` becomes ``:``); pass a
    ``yarl.URL(..., encoded=True)`` when the path must go out byte for byte, as a signed one must.
    """

    def __init__(self, *, pool_size: int = 1000, keepalive_s: float = 30.0) -> None:
        self._pool_size = pool_size
        self._keepalive_s = keepalive_s
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._pool_size, keepalive_timeout=self._keepalive_s, ttl_dns_cache=300
            )
            # Upstream bodies are read as bytes and decoded by the codecs; no auto-decompress cost.
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=True, skip_auto_headers=("User-Agent",)
            )
        return self._session

    async def post(
        self,
        url: str | URL,
        headers: Mapping[str, str],
        body: bytes,
        timeouts: CallTimeouts,
        label: str,
    ) -> RawResponse:
        try:
            async with self._client().post(
                url, data=body, headers=headers, timeout=_client_timeout(timeouts)
            ) as resp:
                payload = await resp.read()
                return RawResponse(resp.status, resp.headers, payload)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise _translate(exc, label) from exc

    async def get(
        self, url: str | URL, headers: Mapping[str, str], timeouts: CallTimeouts, label: str
    ) -> RawResponse:
        try:
            async with self._client().get(
                url, headers=headers, timeout=_client_timeout(timeouts)
            ) as resp:
                return RawResponse(resp.status, resp.headers, await resp.read())
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise _translate(exc, label) from exc

    async def open_stream(
        self,
        url: str | URL,
        headers: Mapping[str, str],
        body: bytes,
        timeouts: CallTimeouts,
        label: str,
    ) -> UpstreamStream:
        try:
            resp = await self._client().post(
                url, data=body, headers=headers, timeout=_client_timeout(timeouts)
            )
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise _translate(exc, label) from exc
        return UpstreamStream(resp, label)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _translate(exc: BaseException, label: str) -> UpstreamError:
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return UpstreamTimeout(f"{label}: timed out connecting to the upstream")
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return UpstreamTimeout(f"{label}: the upstream sent nothing within the first-token timeout")
    if isinstance(exc, asyncio.TimeoutError):
        return UpstreamTimeout(f"{label}: the upstream did not finish within the total timeout")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamConnectionError(f"{label}: cannot connect to the upstream ({exc.os_error})")
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return UpstreamConnectionError(f"{label}: the upstream closed the connection mid-response")
    if isinstance(exc, ValueError):
        # aiohttp refuses some requests before sending them (an invalid URL, credentials in
        # the URL next to an Authorization header): this target will refuse every request.
        # Its text can quote the URL, password included: not shown.
        refused = UpstreamConnectionError(
            f"{label}: the request could not be sent ({type(exc).__name__}); check the "
            "provider's base_url and headers"
        )
        refused.same_target = False
        return refused
    return UpstreamConnectionError(f"{label}: upstream request failed ({type(exc).__name__})")


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if "," in value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None
