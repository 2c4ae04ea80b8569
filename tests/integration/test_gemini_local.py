"""The embedded model (SmolLM2) through the Gemini API and the ``google-genai`` SDK."""

from __future__ import annotations

import pytest
from google import genai
from google.genai import types

from tests.integration.server import RunningServer

QUESTION = "What is the capital of France?"


@pytest.fixture(scope="module")
def client(gateway: RunningServer) -> genai.Client:
    options = types.HttpOptions(base_url=gateway.url, timeout=120_000)
    return genai.Client(api_key="unused", http_options=options)


def test_local_model_answers_and_streams(client: genai.Client):
    config = types.GenerateContentConfig(max_output_tokens=24, temperature=0)
    answer = client.models.generate_content(model="local", contents=QUESTION, config=config)
    assert "Paris" in (answer.text or "")
    assert answer.usage_metadata is not None and answer.usage_metadata.candidates_token_count
    stream = client.models.generate_content_stream(model="local", contents=QUESTION, config=config)
    assert "Paris" in "".join(chunk.text or "" for chunk in stream)


def test_local_embeddings_and_count(client: genai.Client):
    result = client.models.embed_content(model="local", contents=["cats purr", "markets fell"])
    first, second = (e.values for e in result.embeddings or [])
    assert first and second and len(first) == len(second) and first != second
    assert (client.models.count_tokens(model="local", contents=QUESTION).total_tokens or 0) > 0
