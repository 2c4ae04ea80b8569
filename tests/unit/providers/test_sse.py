import itertools

from hypothesis import given
from hypothesis import strategies as st

from modelyard.providers.sse import SSEDecoder, SSEEvent


def test_events_split_across_chunks_and_crlf():
    dec = SSEDecoder()
    assert dec.feed(b'data: {"a"') == []
    assert dec.feed(b":1}\r\n\r\nevent: ping\ndata: x\n") == [SSEEvent('{"a":1}')]
    assert dec.pending
    assert dec.feed(b"\n") == [SSEEvent("x", "ping")]
    assert not dec.pending


def test_multiline_data_and_comments():
    dec = SSEDecoder()
    events = dec.feed(b": keep-alive\n\ndata: line1\ndata: line2\n\ndata:[DONE]\n\n")
    assert events == [SSEEvent("line1\nline2"), SSEEvent("[DONE]")]


_LINES = st.sampled_from(
    [
        b'data: {"a":1}\n',
        b"data: \xc3\xa9t\xc3\xa9\n",
        b"data:[DONE]\n",
        b"data:  two spaces\n",
        b"event: ping\n",
        b"id: 7\n",
        b": comment\n",
        b"\n",
        b"\r\n",
        b"data: crlf\r\n",
    ]
)


def _line_by_line(stream: bytes) -> list[SSEEvent]:
    """The reference: the stream read one line at a time (the decoder's general path)."""
    dec = SSEDecoder()
    events: list[SSEEvent] = []
    for n in range(len(stream)):
        events += dec._feed_lines(dec._buffer + stream[n : n + 1])
    return events


@given(st.lists(_LINES, max_size=40), st.lists(st.integers(0, 400), max_size=8))
def test_any_chunking_gives_the_events_of_the_line_by_line_reading(
    lines: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(lines)
    points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    dec = SSEDecoder()
    events: list[SSEEvent] = []
    for a, b in itertools.pairwise(points):
        events += dec.feed(stream[a:b])
    assert events == _line_by_line(stream)
