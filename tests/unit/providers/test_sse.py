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
