"""Property: whatever pieces an OpenAI upstream streams (text, refusal, with or without their
log probabilities, fields the core does not model), an OpenAI client gets each piece with
its own fields, in order, nothing lost or moved to another piece."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.properties import examples

from modelyard.protocols.openai import encode
from modelyard.providers.openai_compatible import codec

_TEXT = st.text(st.characters(codec="utf-8"), min_size=1, max_size=8)
_LOGPROBS = st.none() | st.builds(
    lambda lp: {"content": [{"token": "t", "logprob": lp, "bytes": None, "top_logprobs": []}]},
    st.floats(-20, 0),
)
_PIECE = st.tuples(st.sampled_from(("content", "refusal")), _TEXT, _LOGPROBS, st.booleans())


def _chunk(kind: str, text: str, logprobs: Any, extra: bool) -> dict[str, Any]:
    choice: dict[str, Any] = {
        "index": 0,
        "delta": {kind: text},
        "logprobs": logprobs,
        "finish_reason": None,
    }
    if extra:  # a vendor's own field on the delta
        choice["delta"]["x_note"] = text[::-1]
    return {"choices": [choice]}


@settings(max_examples=examples(100))
@given(st.lists(_PIECE, min_size=1, max_size=12))
def test_every_piece_keeps_its_own_fields(pieces: list[tuple[str, str, Any, bool]]) -> None:
    encoder = encode.ChunkEncoder("id", 1, "dep", include_usage=False)
    raw = b""
    for piece in pieces:
        for event in codec.parse_chunk(_chunk(*piece)):
            raw += encoder.encode(event) or b""
    raw += encoder.close()
    frames = [orjson.loads(f[6:]) for f in raw.split(b"\n\n") if f.startswith(b"data: {")]
    assert len(frames) == len(pieces)
    for frame, (kind, text, logprobs, extra) in zip(frames, pieces, strict=True):
        [choice] = frame["choices"]
        assert choice["delta"][kind] == text
        assert choice["logprobs"] == logprobs
        assert choice["delta"].get("x_note") == (text[::-1] if extra else None)
