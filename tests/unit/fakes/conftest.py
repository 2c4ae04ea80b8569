"""One fake OpenAI server per test module, and an official SDK client pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.fakes import FakeOpenAI

API_KEY = "sk-unit-test-0123456789abcdef"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=API_KEY) as server:
        yield server


@pytest.fixture(autouse=True)
def _forget_requests(fake: FakeOpenAI) -> None:
    fake.clear()


@pytest.fixture(scope="module")
def client(fake: FakeOpenAI) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0, timeout=5) as sdk:
        yield sdk
