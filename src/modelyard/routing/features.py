"""From a request to the learned router's features: hashed word n-grams plus cheap facts.

The text part is a hashed bag of word unigrams and bigrams (CRC-32 into ``TEXT_DIM`` buckets,
sublinear term frequency, scaled by the artifact's IDF and L2-normalised). An embedder was
measured first: the embedded llama.cpp model (SmolLM2-135M) costs ~220 ms per MMLU prompt on
one core of this machine, forty times the 5 ms decision budget, and ``model2vec`` installs
but fetches its weights from a hub at first use (which fails offline); the hashed TF-IDF costs
well under a millisecond, needs no weights and is what the router ships with.

The cheap facts (length, lines, digits, code, non-ASCII share, conversation depth, tools,
images, JSON schema) sit in ``FACTS`` extra columns after the text buckets. Training and
serving share :func:`text_of`, :func:`buckets` and :func:`facts`, so they cannot drift apart.
"""

from __future__ import annotations

import itertools
import math
import re
import zlib
from collections.abc import Iterable
from typing import Final

from modelyard.core.chat import ChatRequest, ImagePart

TEXT_DIM: Final = 1 << 18
FACT_NAMES: Final = (
    "log_chars",
    "log_lines",
    "digit_share",
    "code",
    "non_ascii_share",
    "depth",
    "tools",
    "images",
    "json_schema",
)
FACTS: Final = len(FACT_NAMES)
DIM: Final = TEXT_DIM + FACTS
# Only the request's tail matters for the decision, and a bound keeps a huge prompt cheap.
MAX_CHARS: Final = 8000

_WORD: Final = re.compile(r"\w+")
_CODE: Final = re.compile(r"```|\bdef |\bclass |[{};]\s*$", re.MULTILINE)


def text_of(request: ChatRequest) -> str:
    """The text the router reads: the user turns, last ones kept when over ``MAX_CHARS``."""
    parts = [m.text() for m in request.messages if m.role == "user"]
    text = "\n".join(parts)
    return text[-MAX_CHARS:]


def buckets(text: str) -> dict[int, float]:
    """The hashed unigram and bigram counts of ``text``, as sublinear term frequencies."""
    words = _WORD.findall(text[-MAX_CHARS:].lower())
    counts: dict[int, int] = {}
    for gram in _grams(words):
        index = zlib.crc32(gram.encode()) & (TEXT_DIM - 1)
        counts[index] = counts.get(index, 0) + 1
    return {i: 1.0 + math.log(n) for i, n in counts.items()}


def _grams(words: list[str]) -> Iterable[str]:
    yield from words
    for a, b in itertools.pairwise(words):
        yield f"{a} {b}"


def facts(
    text: str, depth: int = 1, tools: int = 0, images: int = 0, schema: bool = False
) -> list[float]:
    """The cheap facts of a request, in ``FACT_NAMES`` order, each scaled to about [0, 1]."""
    n = max(len(text), 1)
    digits = sum(c.isdigit() for c in text)
    non_ascii = sum(not c.isascii() for c in text)
    return [
        math.log1p(len(text)) / 10.0,
        math.log1p(text.count("\n")) / 5.0,
        digits / n,
        1.0 if _CODE.search(text) else 0.0,
        non_ascii / n,
        math.log1p(depth) / 3.0,
        1.0 if tools else 0.0,
        1.0 if images else 0.0,
        1.0 if schema else 0.0,
    ]


def request_facts(request: ChatRequest, text: str) -> list[float]:
    """:func:`facts` for a decoded chat request."""
    images = sum(1 for m in request.messages for p in m.content if isinstance(p, ImagePart))
    fmt = request.response_format
    schema = fmt is not None and fmt.kind == "json_schema"
    depth = sum(1 for m in request.messages if m.role == "user")
    return facts(text, depth=depth, tools=len(request.tools), images=images, schema=schema)
