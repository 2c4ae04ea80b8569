"""The upstream-error contract: every adapter gives the client the same answer for the same failure.

Each vendor fake answers ``fail-NNN`` with its vendor's real error body for that status
(``-retry-S`` adds ``retry-after: S``, ``-noretry`` removes any delay). The expected answers are
written out here, independently of ``providers.errors.POLICY``, as ``docs/errors.md`` states them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from modelyard.core.chat import ChatRequest, Message, TextPart
from modelyard.core.errors import ModelyardError
from modelyard.core.timeouts import CallTimeouts
from modelyard.providers.base import CallContext, Provider, ProviderSettings
from modelyard.providers.errors import UpstreamFailure, redact, to_error
from modelyard.providers.registry import provider_types
from modelyard.providers.transport import Transport
from modelyard.routing.retry import is_retryable
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.bedrock_upstream import FakeBedrock
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import FakeOpenAI

KEY = "sk-contract-0123456789abcdef"
GEMINI_KEY = "AIzaSyContractTestKey0123456789abcdefgh"
CTX = CallContext("req-contract")
TIMEOUTS = CallTimeouts(connect=2, first_token=5, total=10)


@dataclass(frozen=True)
class Answer:
    status: int
    kind: str
    code: str
    retryable: bool
    same_target: bool = True  # a retry may go back to the target that failed


# upstream status → what the client sees; docs/errors.md gives the reason for each row.
EXPECTED = {
    400: Answer(400, "invalid_request", "upstream_rejected", False),
    401: Answer(502, "upstream", "upstream_auth", True, same_target=False),
    402: Answer(502, "upstream", "upstream_account", True, same_target=False),
    403: Answer(502, "upstream", "upstream_auth", True, same_target=False),
    404: Answer(502, "upstream", "upstream_not_found", True, same_target=False),
    408: Answer(504, "timeout", "upstream_timeout", True),
    409: Answer(502, "upstream", "upstream_conflict", True),
    413: Answer(400, "invalid_request", "request_too_large", False),
    422: Answer(400, "invalid_request", "upstream_rejected", False),
    429: Answer(429, "rate_limit", "upstream_rate_limited", True),
    500: Answer(502, "upstream", "upstream_error", True),
    502: Answer(502, "upstream", "upstream_error", True),
    503: Answer(503, "upstream", "upstream_unavailable", True),
    504: Answer(504, "timeout", "upstream_timeout", True),
    529: Answer(503, "upstream", "upstream_unavailable", True),
}
ADAPTERS = ["openai", "deepseek", "azure_openai", "local", "anthropic", "gemini", "bedrock"]
DELAYS = {"retry-3": 3.0, "noretry": None}


@dataclass
class Fakes:
    openai: FakeOpenAI
    anthropic: FakeAnthropic
    gemini: FakeGemini
    bedrock: FakeBedrock


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    with (
        FakeOpenAI() as openai,
        FakeAnthropic() as anthropic,
        FakeGemini(api_key=GEMINI_KEY) as gemini,
        FakeBedrock(api_key=KEY) as bedrock,
    ):
        yield Fakes(openai, anthropic, gemini, bedrock)


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    client = Transport()
    yield client
    await client.aclose()


def settings_for(kind: str, fakes: Fakes) -> ProviderSettings:
    options: dict[str, str | int | float | bool] = {}
    key: str | None = KEY
    if kind in ("openai", "deepseek", "local"):
        base = fakes.openai.base_url
    elif kind == "azure_openai":
        base = fakes.openai.base_url.removesuffix("/v1")
        options = {"auth": "bearer"}
    elif kind == "anthropic":
        base = fakes.anthropic.base_url
    elif kind == "gemini":
        base, key = fakes.gemini.base_url, GEMINI_KEY
    else:
        base, options = fakes.bedrock.base_url, {"region": "us-east-1"}
    return ProviderSettings(
        name=kind, type=kind, base_url=base, api_key=key, timeouts=TIMEOUTS, options=options
    )


async def call(provider: Provider, model: str, *, stream: bool) -> ModelyardError:
    request = ChatRequest(model, [Message("user", (TextPart("hello"),))], stream=stream)
    try:
        if stream:
            async for _ in provider.stream(request, model, CTX):
                pass
        else:
            await provider.chat(request, model, CTX)
    except ModelyardError as err:
        return err
    raise AssertionError(f"{model} did not fail")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("kind", ADAPTERS)
async def test_every_adapter_answers_every_status_alike(
    kind: str, stream: bool, fakes: Fakes, transport: Transport
) -> None:
    provider = provider_types()[kind](settings_for(kind, fakes), transport)
    seen: dict[str, tuple[object, ...]] = {}
    for status, want in EXPECTED.items():
        for suffix, delay in DELAYS.items():
            model = f"fail-{status}-{suffix}"
            err = await call(provider, model, stream=stream)
            seen[model] = (
                err.status,
                err.kind,
                err.code,
                is_retryable(err),
                err.same_target,
                err.retry_after,
            )
            wanted_delay = delay if want.retryable else None
            assert seen[model] == (
                want.status,
                want.kind,
                want.code,
                want.retryable,
                want.same_target,
                wanted_delay,
            ), f"{kind} {model}: {err!r}"
            assert KEY not in err.message and GEMINI_KEY not in err.message


def test_retryability_has_one_source() -> None:
    # A 401 from upstream is our key's fault: another target may hold a good one.
    err = to_error(UpstreamFailure(401, "bad key"), "provider 'p'")
    assert err.retryable is True and is_retryable(err) is True
    refused = to_error(UpstreamFailure(400, "bad temperature"), "provider 'p'")
    assert refused.retryable is False and is_retryable(refused) is False


def test_an_in_stream_failure_is_said_to_be_one() -> None:
    err = to_error(UpstreamFailure(529, "Overloaded", stream_started=True), "provider 'p'")
    assert err.status == 503 and "after the stream began" in err.message


def test_credential_texts_are_dropped_account_texts_redacted() -> None:
    for status in (401, 403):
        err = to_error(UpstreamFailure(status, "key sk-abc...wxyz is wrong"), "provider 'p'")
        assert "is wrong" not in err.message and "wxyz" not in err.message
    spent = to_error(UpstreamFailure(402, "Insufficient Balance (sk-abc...wxyz)"), "provider 'p'")
    assert "Insufficient Balance" in spent.message and "wxyz" not in spent.message


@pytest.mark.parametrize(
    "secret",
    [
        "sk-proj-AbCdEf0123456789xyz",
        "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUv",
        "AKIAIOSFODNN7EXAMPLE",
        "Bearer abcdef0123456789",
        "api_key: abc123def456",
        "x9QmT3vL7pK2sR8wY4zN6bH1cJ5dF0gA",
    ],
)
def test_relayed_texts_lose_anything_like_a_key(secret: str) -> None:
    text = redact(f"Invalid 'temperature' (request made with {secret}): must be <= 2")
    assert secret not in text and "[redacted]" in text
    assert text.startswith("Invalid 'temperature'") and text.endswith("must be <= 2")


def test_ordinary_words_survive_redaction() -> None:
    text = "model: claude-3-5-sonnet-20241022 request_id req_011CSHoEeqs5C35K2UUqR7Fy too long"
    assert redact(text) == text
