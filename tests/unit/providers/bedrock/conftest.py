"""A fake Bedrock per test module, test credentials in the environment, a fresh adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from modelyard.core.timeouts import CallTimeouts
from modelyard.providers.base import ProviderSettings
from modelyard.providers.bedrock import BedrockProvider
from modelyard.providers.transport import Transport
from tests.fakes.bedrock_upstream import (
    TEST_ACCESS_KEY,
    TEST_REGION,
    TEST_SECRET_KEY,
    FakeBedrock,
)

# Variables that would make botocore look past the environment for credentials (or pick a
# bearer key) on a developer's machine; the tests must see only what they set.
_CLEARED = (
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_BEARER_TOKEN_BEDROCK",
    "AWS_DEFAULT_REGION",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeBedrock]:
    with FakeBedrock() as server:
        yield server


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)
    empty = tmp_path_factory.getbasetemp() / "no-aws-config"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv("AWS_REGION", TEST_REGION)


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    client = Transport()
    yield client
    await client.aclose()


@pytest.fixture
def provider(fake: FakeBedrock, transport: Transport) -> BedrockProvider:
    fake.clear()
    settings = ProviderSettings(
        name="br",
        type="bedrock",
        base_url=fake.base_url,
        timeouts=CallTimeouts(connect=2, first_token=2, total=10),
    )
    return BedrockProvider(settings, transport)
