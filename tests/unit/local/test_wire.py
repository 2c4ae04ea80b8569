"""The worker's requests: decoded by protocols.openai, then folded for a llama.cpp template."""

from __future__ import annotations

from typing import Any

import pytest

from modelyard.core.errors import InvalidRequest
from modelyard.local.wire import MAX_CHOICES, Need, parse_chat, parse_embeddings

_HI = [{"role": "user", "content": "hi"}]


def _chat(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "messages": _HI, **fields}


def test_roles_fold_and_text_parts_join_line_by_line() -> None:
    params = parse_chat(
        _chat(
            messages=[
                {"role": "developer", "content": "Be brief."},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                },
            ]
        )
    )
    assert [(m.role, m.content) for m in params.messages] == [
        ("system", "Be brief."),
        ("user", "a\nb"),
    ]


def test_sampling_reads_the_llama_extensions_and_folds_the_seed() -> None:
    params = parse_chat(
        _chat(temperature=0, top_k=5, min_p=0.2, repeat_penalty=1.3, seed=-1, stop=["", "x"])
    )
    sampling = params.sampling
    assert (sampling.temperature, sampling.top_k, sampling.min_p) == (0.0, 5, 0.2)
    assert sampling.repeat_penalty == 1.3
    assert sampling.seed == 2**32 - 1
    assert sampling.stop == ("x",)
    default = parse_chat(_chat()).sampling
    assert (default.temperature, default.repeat_penalty, default.top_k) == (1.0, 1.1, 40)


@pytest.mark.parametrize(
    ("fields", "need"),
    [
        ({"functions": [{"name": "f"}]}, Need("tools", "functions")),
        ({"logprobs": True}, Need("logprobs", "logprobs")),
        ({"logit_bias": {"1": 2}}, Need("logit_bias", "logit_bias")),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}
                ]
            },
            Need("image input", "messages[0].content[0]"),
        ),
    ],
)
def test_what_no_local_model_offers_is_noted_with_its_field(
    fields: dict[str, Any], need: Need
) -> None:
    assert parse_chat(_chat(**fields)).needs == (need,)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"n": MAX_CHOICES + 1}, "n"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"top_k": -1}, "top_k"),
        ({"repeat_penalty": "high"}, "repeat_penalty"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"response_format": {"type": "xml"}}, "response_format.type"),
    ],
)
def test_bad_fields_are_named(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_chat(_chat(**fields))
    assert caught.value.param == param


def test_embeddings_inputs_and_encoding() -> None:
    params = parse_embeddings({"model": "m", "input": [[1, 2], [3]], "encoding_format": "base64"})
    assert params.inputs == ((1, 2), (3,))
    assert params.encoding_format == "base64"
    assert parse_embeddings({"model": "m", "input": "hi"}).inputs == ("hi",)
    for bad_input in ([""], [[-1]]):
        with pytest.raises(InvalidRequest) as caught:
            parse_embeddings({"model": "m", "input": bad_input})
        assert caught.value.param == "input[0]"
