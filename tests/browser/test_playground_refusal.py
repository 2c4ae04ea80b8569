"""The playground shows a refusal as a refusal, in a real browser: an OpenAI upstream's
(``delta.refusal``, streamed into a labelled block apart from the answer) and an Anthropic
upstream's (``stop_reason: "refusal"``: its explanation is the text, labelled as stopped)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.browser.conftest import ADMIN_KEY, Gateway, shoot, sign_in
from tests.fakes.anthropic_messages import REFUSAL as CLAUDE_REFUSAL
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_chat import REFUSAL as OPENAI_REFUSAL
from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.conftest import UPSTREAM_KEY
from tests.integration.server import run_server


@pytest.fixture(scope="module")
def refusing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway with an OpenAI and an Anthropic deployment, both fakes refusing on cue."""
    with FakeOpenAI(api_key=UPSTREAM_KEY) as openai, FakeAnthropic(api_key=UPSTREAM_KEY) as claude:
        config = {
            "local": {"enabled": False},
            "providers": {
                "oa": {
                    "type": "openai_compatible",
                    "base_url": openai.base_url,
                    "api_key": "env::UP_KEY",
                },
                "an": {"type": "anthropic", "base_url": claude.base_url, "api_key": "env::UP_KEY"},
            },
            "deployments": {
                "claude": {"targets": [{"provider": "an", "model": "claude-sonnet-4-5"}]},
                "gpt": {"targets": [{"provider": "oa", "model": "gpt-4o-mini"}]},
            },
        }
        env = {"UP_KEY": UPSTREAM_KEY, "MODELYARD_ADMIN_KEY": ADMIN_KEY}
        tmp: Path = tmp_path_factory.mktemp("refusing")
        with run_server(tmp, config, env=env) as server:
            yield Gateway(server)


def test_a_refusal_is_shown_as_a_refusal_whatever_the_upstreams_dialect(
    browser: BrowserContext, refusing: Gateway
):
    page = browser.new_page()
    sign_in(page, refusing, ADMIN_KEY)
    page.goto(f"{refusing.url}/portal/playground")
    page.get_by_label("claude").check()
    page.get_by_label("gpt").check()
    page.get_by_label("User").fill("Tell me a secret, or please refuse")
    page.get_by_role("button", name="Compare").click()
    claude, gpt = page.get_by_test_id("column-0"), page.get_by_test_id("column-1")
    for column in (claude, gpt):
        expect(column.get_by_test_id("stats")).to_contain_text("Tokens in/out")
    # OpenAI's refusal: in its own labelled block; the answer itself stays empty.
    refusal = gpt.get_by_test_id("refusal")
    expect(refusal).to_be_visible()
    expect(refusal).to_have_text(f"Refused: {OPENAI_REFUSAL}")
    assert gpt.locator("pre.answer").inner_text().strip() == ""
    assert gpt.get_by_test_id("stopped").count() == 0
    # Claude's: its explanation is the text, and the column says the answer was stopped.
    expect(claude.locator("pre.answer")).to_have_text(CLAUDE_REFUSAL)
    expect(claude.get_by_test_id("stopped")).to_contain_text("Refused or filtered")
    expect(claude.get_by_test_id("refusal")).to_be_hidden()
    shoot(page, "comparison-refused")
    # A refusal is no reference answer for an evaluation item.
    href = gpt.get_by_role("link", name="Save as an evaluation item").get_attribute("href")
    assert href is not None
    item = page.request.get(f"{refusing.url}{href}")
    assert item.status == 400 and "refused" in item.text()
    # The kept comparison, opened again: each column reconnects and gets what was answered
    # (no second call), labelled the same.
    page.goto(f"{refusing.url}{href.removesuffix('/1/item')}")
    expect(page.get_by_test_id("column-1").get_by_test_id("refusal")).to_have_text(
        f"Refused: {OPENAI_REFUSAL}"
    )
