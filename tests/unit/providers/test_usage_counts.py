"""A usage count that is not a whole number of tokens is a broken answer in every codec (issue
17 #2): a string (``"abc"``) or a fraction could not be metered, a negative count would refund a
budget, and reading either as 0 would make the call free. Absent or null counts stay 0."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from modelyard.core.chat import Usage
from modelyard.providers.anthropic.response import parse_usage as anthropic_usage
from modelyard.providers.bedrock.response import parse_usage as bedrock_usage
from modelyard.providers.gemini.response import parse_usage as gemini_usage
from modelyard.providers.openai_compatible.codec import parse_usage as openai_usage

INPUT_FIELD: dict[str, tuple[Callable[[Any], Usage | None], str]] = {
    "openai": (openai_usage, "prompt_tokens"),
    "anthropic": (anthropic_usage, "input_tokens"),
    "gemini": (gemini_usage, "promptTokenCount"),
    "bedrock": (bedrock_usage, "inputTokens"),
}


@pytest.mark.parametrize("bad", ["abc", "12", 1.5, -5, True, [1]])
@pytest.mark.parametrize("codec", list(INPUT_FIELD))
def test_a_count_that_is_not_a_token_count_is_refused(codec: str, bad: object) -> None:
    parse, field = INPUT_FIELD[codec]
    with pytest.raises(ValueError, match="token"):
        parse({field: bad})


@pytest.mark.parametrize("codec", list(INPUT_FIELD))
def test_absent_null_and_whole_counts_are_read(codec: str) -> None:
    parse, field = INPUT_FIELD[codec]
    absent, null, whole = parse({}), parse({field: None}), parse({field: 7})
    assert absent is not None and null is not None and whole is not None
    assert absent.input_tokens == null.input_tokens == 0
    assert whole.input_tokens == 7
