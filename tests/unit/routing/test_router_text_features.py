"""The learned router's text features: character n-grams (format 2) and word n-grams (format 1)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from modelyard.core.errors import ModelyardError
from modelyard.routing import chars
from modelyard.routing import features as F
from modelyard.routing.model import RouterModel, dumps, loads, text_vector
from modelyard.routing.training import Example, fit


def test_character_grams_count_each_3_4_and_5_gram_of_the_normalised_text():
    idx, tf = chars.buckets("abcab")
    # 3-grams abc, bca, cab; 4-grams abca, bcab; 5-gram abcab: six distinct grams, once each.
    assert len(idx) == 6
    assert np.all(np.diff(idx) > 0)
    assert np.allclose(tf, 1.0)
    spaced_idx, _ = chars.buckets("ABC \n  ab")  # lower-cased, whitespace collapsed
    assert np.array_equal(spaced_idx, chars.buckets("abc ab")[0])
    assert not np.array_equal(spaced_idx, idx)  # the space is part of the grams
    rep_idx, rep_tf = chars.buckets("aaaa")  # aaa twice, aaaa once
    assert len(rep_idx) == 2
    assert sorted(rep_tf.tolist()) == pytest.approx([1.0, 1.0 + np.log(2.0)])


def test_character_grams_of_a_short_text_are_empty_and_a_long_one_is_bounded():
    idx, tf = chars.buckets("ab")
    assert len(idx) == 0 and len(tf) == 0
    long_idx, _ = chars.buckets("x" * 10 + "the end " * 5000)
    tail_idx, _ = chars.buckets(("x" * 10 + "the end " * 5000)[-F.MAX_CHARS :])
    assert np.array_equal(long_idx, tail_idx)
    assert long_idx.max() < F.TEXT_DIM


def _examples() -> list[Example]:
    out = []
    for i in range(200):
        hard = i % 2 == 0
        text = f"item {i}: " + ("compute the eigenvalues" if hard else "name the colour")
        out.append(Example(text, F.facts(text), hard))
    return out


@pytest.mark.parametrize("kind", ["chars", "words"])
def test_both_kinds_of_text_features_train_score_and_round_trip(kind):
    model = fit(_examples(), {"trained_on": "synthetic"}, text_features=kind)
    again = loads(dumps(model))
    assert again.text_features == kind
    assert again.header["format"] == "modelyard.router/3"
    hard = "compute the eigenvalues of this"
    easy = "name the colour of this"
    assert again.score_text(hard, F.facts(hard)) > 0.5 > again.score_text(easy, F.facts(easy))
    assert again.score_text(hard, F.facts(hard)) == pytest.approx(
        model.score_text(hard, F.facts(hard)), abs=1e-6
    )


def _artifact(header: dict[str, object], model: RouterModel) -> bytes:
    out = io.BytesIO()
    np.savez_compressed(
        out,
        idf=model.idf,
        coef=model.coef,
        intercept=np.float64(model.intercept),
        header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
    )
    return out.getvalue()


def test_a_format_1_artifact_is_read_as_word_grams():
    words = fit(_examples(), {}, text_features="words")
    old = loads(_artifact({"format": "modelyard.router/1", "version": "x"}, words))
    assert old.text_features == "words"
    text = "compute the eigenvalues"
    assert old.score_text(text, F.facts(text)) == pytest.approx(
        words.score_text(text, F.facts(text)), abs=1e-6
    )
    idx, _ = text_vector(text, "words")
    assert sorted(idx.tolist()) == sorted(F.buckets(text))


def test_unknown_text_features_are_refused():
    model = fit(_examples(), {}, text_features="words")
    data = _artifact({"format": "modelyard.router/2", "text_features": "bytes"}, model)
    with pytest.raises(ModelyardError, match="text features 'bytes'"):
        loads(data)
    with pytest.raises(ValueError, match="text features"):
        fit(_examples(), {}, text_features="bytes")
