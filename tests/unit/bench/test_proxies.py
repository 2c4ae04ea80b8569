"""The parsing reference proxy re-encodes every SSE event whole, wherever the chunks split."""

from __future__ import annotations

import asyncio
from unittest.mock import Mock

import aiohttp
import orjson
from bench.clients import _aiohttp_chunks
from bench.proxies import _reencoded
from bench.upstream import stream_body


class _Response:
    """What the aiohttp client reads of an ``aiohttp.ClientResponse``: a real stream reader."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.content = aiohttp.StreamReader(Mock(_reading_paused=False), 2**16)
        for chunk in chunks:
            self.content.feed_data(chunk)
        self.content.feed_eof()
        self.released = False

    def release(self) -> None:
        self.released = True


async def _collect(chunks: list[bytes]) -> tuple[bytes, bool]:
    response = _Response(chunks)
    out = b"".join([piece async for piece in _reencoded(_aiohttp_chunks(response))])
    return out, response.released


def test_events_come_out_whole_and_reencoded_for_any_split() -> None:
    body = stream_body().encode()
    for size in (1, 7, 64, len(body)):
        chunks = [body[i : i + size] for i in range(0, len(body), size)]
        out, released = asyncio.run(_collect(chunks))
        assert released
        assert out.endswith(b"data: [DONE]\n\n")
        events = [e for e in out.split(b"\n\n") if e and e != b"data: [DONE]"]
        upstream = [e for e in body.split(b"\n\n") if e and e != b"data: [DONE]"]
        # orjson re-encodes compactly with the keys in order: the same bytes as the fake's.
        assert [orjson.loads(e[6:]) for e in events] == [orjson.loads(e[6:]) for e in upstream]
        assert out == body
