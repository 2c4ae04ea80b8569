"""Stored responses and conversations through the official SDK: previous_response_id really
resends the earlier turns, store=false, paging, conversations, two projects' keys (404 on every
route), and a restart."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest

from modelyard.services.tenancy import KeySpec, TenancyAdmin
from modelyard.store import database_url, open_store
from modelyard.store.usage import UsageLedger
from modelyard.tenancy.keys import Principal
from modelyard.tenancy.model import Limits, UsageFilter
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.conftest import UPSTREAM_KEY
from tests.integration.responses_spec import spec_errors
from tests.integration.server import RunningServer, run_server
from tests.waiting import wait_until

OPERATOR = Principal("test-operator", role="operator")


@dataclass
class Site:
    tmp: Path
    config: dict[str, object]
    keys: dict[str, str]
    server: RunningServer

    def client(self, who: str = "a") -> openai.OpenAI:
        return openai.OpenAI(
            base_url=self.server.base_url, api_key=self.keys[who], max_retries=0, timeout=60
        )


async def _seed(url: str) -> dict[str, str]:
    store = await open_store(url)
    admin = TenancyAdmin(store)
    try:
        keys = {}
        for name in ("a", "b"):
            await admin.create_project(OPERATOR, f"team-{name}", None, Limits())
            _stored, fresh = await admin.create_key(OPERATOR, KeySpec(f"team-{name}"))
            keys[name] = fresh.secret
        return keys
    finally:
        await store.aclose()


@pytest.fixture(scope="module")
def site(
    fake_upstream: FakeOpenAI,
    vendor_fakes: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("responses-state")
    (tmp / "data").mkdir()
    keys = asyncio.run(_seed(database_url(None, tmp / "data")))
    anthropic: FakeAnthropic = vendor_fakes["anthropic"]
    providers = {
        "oa": {
            "type": "openai_compatible",
            "base_url": fake_upstream.base_url,
            "api_key": "env::K",
        },
        "an": {"type": "anthropic", "base_url": anthropic.base_url, "api_key": "env::K"},
    }
    config: dict[str, object] = {
        "local": {"enabled": False},
        "providers": providers,
        "deployments": {
            "oa": {"targets": [{"provider": "oa", "model": "model-x"}]},
            "an": {"targets": [{"provider": "an", "model": "model-x"}]},
            "strict": {
                "targets": [{"provider": "oa", "model": "model-x"}],
                "hosted_tools": "refuse",
            },
        },
    }
    with run_server(tmp, config, env={"K": UPSTREAM_KEY}) as server:
        yield Site(tmp, config, keys, server)


@pytest.mark.parametrize("model", ["oa", "an"])
def test_previous_response_id_resends_the_earlier_turns(
    site: Site, model: str, fake_upstream: FakeOpenAI, vendor_fakes: dict[str, Any]
):
    fake = fake_upstream if model == "oa" else vendor_fakes["anthropic"]
    client = site.client()
    first = client.responses.create(model=model, input="FIRST-TURN-4411", instructions="be brief")
    second = client.responses.create(
        model=model, input="second question", previous_response_id=first.id
    )
    assert second.output_text == "echo: second question"
    assert second.previous_response_id == first.id
    sent = json.dumps(fake.last_request.json)
    assert "FIRST-TURN-4411" in sent and "echo: FIRST-TURN-4411" in sent
    assert "be brief" not in sent  # instructions do not carry over (the spec)
    retrieved = client.responses.retrieve(second.id)
    assert retrieved.output_text == second.output_text
    body = client.responses.with_raw_response.retrieve(second.id).http_response.json()
    assert spec_errors("Response", body) == []


def test_streamed_response_is_stored_and_chained(site: Site):
    client = site.client()
    with client.responses.stream(model="oa", input="streamed turn") as stream:
        first = stream.get_final_response()
    again = client.responses.retrieve(first.id)
    assert again.output_text == "echo: streamed turn" and again.status == "completed"
    second = client.responses.create(model="oa", input="next", previous_response_id=first.id)
    assert second.output_text == "echo: next"


def test_store_false_is_not_retrievable_nor_continued(site: Site):
    client = site.client()
    raw = client.responses.with_raw_response.create(model="oa", input="hi", store=False)
    assert raw.http_response.json()["store"] is False
    unstored = raw.parse()
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unstored.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="oa", input="x", previous_response_id=unstored.id)


def test_input_items_paging_and_delete(site: Site):
    client = site.client()
    items: Any = [{"role": "user", "content": f"part {i}"} for i in range(5)]
    created = client.responses.create(model="oa", input=items)
    page = client.responses.input_items.list(created.id, limit=2, order="asc")
    texts = [getattr(item, "content")[0].text for item in page.data]  # noqa: B009
    assert texts == ["part 0", "part 1"] and page.has_more
    rest = client.responses.input_items.list(
        created.id, limit=10, order="asc", after=page.data[1].id
    )
    assert len(rest.data) == 3 and not rest.has_more
    everything = [i.id for i in client.responses.input_items.list(created.id)]  # auto-paged
    assert everything == [i.id for i in reversed(page.data + rest.data)]  # default: desc
    raw = client.responses.input_items.with_raw_response.list(created.id)
    assert spec_errors("ResponseItemList", raw.http_response.json()) == []
    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


def test_previous_response_and_conversation_together_is_a_400(site: Site):
    client = site.client()
    first = client.responses.create(model="oa", input="hi")
    conv = client.conversations.create()
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model="oa", input="x", previous_response_id=first.id, conversation=conv.id
        )
    assert "previous_response_id" in str(caught.value)


def test_conversation_keeps_every_turn(site: Site, vendor_fakes: dict[str, Any]):
    client = site.client()
    conv = client.conversations.create(
        items=[{"type": "message", "role": "user", "content": "SEED-ITEM-77"}],
        metadata={"topic": "test"},
    )
    assert conv.metadata == {"topic": "test"}
    first = client.responses.create(model="oa", input="turn one", conversation=conv.id)
    assert first.output_text == "echo: turn one"
    client.responses.create(model="an", input="turn two", conversation=conv.id)
    items = list(client.conversations.items.list(conv.id, order="asc"))
    texts = [part.text for item in items for part in getattr(item, "content", [])]
    assert texts == ["SEED-ITEM-77", "turn one", "echo: turn one", "turn two", "echo: turn two"]
    sent = json.dumps(vendor_fakes["anthropic"].last_request.json)
    assert "SEED-ITEM-77" in sent and "echo: turn one" in sent
    added = client.conversations.items.create(
        conv.id, items=[{"type": "message", "role": "user", "content": "added"}]
    )
    added_id = str(added.data[0].id)
    got = client.conversations.items.retrieve(added_id, conversation_id=conv.id)
    assert got.id == added_id
    client.conversations.items.delete(added_id, conversation_id=conv.id)
    updated = client.conversations.update(conv.id, metadata={"topic": "changed"})
    assert client.conversations.retrieve(conv.id).metadata == updated.metadata
    for name, raw in (
        ("ConversationResource", client.conversations.with_raw_response.retrieve(conv.id)),
        ("ConversationItemList", client.conversations.items.with_raw_response.list(conv.id)),
    ):
        assert spec_errors(name, raw.http_response.json()) == []
    deleted = client.conversations.delete(conv.id)
    assert deleted.deleted
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conv.id)


def test_conversation_items_limit_per_call(site: Site):
    client = site.client()
    conv = client.conversations.create()
    items: Any = [{"type": "message", "role": "user", "content": "x"}] * 21
    with pytest.raises(openai.BadRequestError):
        client.conversations.items.create(conv.id, items=items)


def test_hosted_tools_refused_where_the_deployment_says_so(site: Site):
    with pytest.raises(openai.BadRequestError) as caught:
        site.client().responses.create(model="strict", input="x", tools=[{"type": "web_search"}])
    assert "web_search" in str(caught.value)


def test_another_projects_key_gets_404_on_every_route(site: Site):
    mine, theirs = site.client("a"), site.client("b")
    response = mine.responses.create(model="oa", input="private")
    conv = mine.conversations.create(items=[{"type": "message", "role": "user", "content": "p"}])
    item_id = str(mine.conversations.items.list(conv.id).data[0].id)
    attempts: list[Callable[[], object]] = [
        lambda: theirs.responses.retrieve(response.id),
        lambda: theirs.responses.delete(response.id),
        lambda: theirs.responses.input_items.list(response.id),
        lambda: theirs.responses.create(model="oa", input="x", previous_response_id=response.id),
        lambda: theirs.responses.create(model="oa", input="x", conversation=conv.id),
        lambda: theirs.conversations.retrieve(conv.id),
        lambda: theirs.conversations.update(conv.id, metadata={"a": "b"}),
        lambda: theirs.conversations.delete(conv.id),
        lambda: theirs.conversations.items.list(conv.id),
        lambda: theirs.conversations.items.create(
            conv.id, items=[{"type": "message", "role": "user", "content": "x"}]
        ),
        lambda: theirs.conversations.items.retrieve(item_id, conversation_id=conv.id),
        lambda: theirs.conversations.items.delete(item_id, conversation_id=conv.id),
    ]
    for attempt in attempts:
        with pytest.raises(openai.NotFoundError):
            attempt()
    # Nothing was changed by the attempts: the owner still sees everything.
    assert mine.responses.retrieve(response.id).output_text == "echo: private"
    assert len(mine.conversations.items.list(conv.id).data) == 1


def test_state_survives_a_restart(site: Site, tmp_path: Path):
    """Keyless mode (no key in this store): everything is the '' owner's, across a restart."""
    (tmp_path / "data").mkdir()
    with run_server(tmp_path, site.config, env={"K": UPSTREAM_KEY}) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="none", max_retries=0)
        response = client.responses.create(model="oa", input="remember me")
        conv = client.conversations.create(
            items=[{"type": "message", "role": "user", "content": "c"}]
        )
    with run_server(tmp_path, site.config, env={"K": UPSTREAM_KEY}) as server:
        again = openai.OpenAI(base_url=server.base_url, api_key="none", max_retries=0)
        assert again.responses.retrieve(response.id).output_text == "echo: remember me"
        assert len(again.conversations.items.list(conv.id).data) == 1
        follow = again.responses.create(model="oa", input="and", previous_response_id=response.id)
        assert follow.output_text == "echo: and"


async def _ledger(url: str) -> list[Any]:
    store = await open_store(url)
    try:
        async with store.transaction() as session:
            return await UsageLedger(session).records(UsageFilter(project_id="team-a"))
    finally:
        await store.aclose()


def test_each_upstream_call_is_a_ledger_step_linked_to_the_response(site: Site):
    client = site.client()
    raw = client.responses.with_raw_response.create(model="oa", input="metered turn")
    response = raw.parse()
    request_id = raw.headers["x-request-id"]
    with client.responses.stream(model="an", input="streamed metered turn") as stream:
        streamed = stream.get_final_response()
    url = database_url(None, site.tmp / "data")

    def rows() -> list[Any] | None:
        found = [r for r in asyncio.run(_ledger(url)) if r.parent_id in (response.id, streamed.id)]
        return found if len(found) == 2 else None

    plain, stepped = sorted(wait_until(rows, "two ledger rows"), key=lambda r: r.stream)
    assert (plain.parent_id, plain.request_id) == (response.id, request_id)
    assert plain.endpoint == "/v1/responses" and plain.project_id == "team-a"
    assert response.usage is not None and streamed.usage is not None
    assert (plain.input_tokens, plain.output_tokens) == (
        response.usage.input_tokens,
        response.usage.output_tokens,
    )
    assert stepped.parent_id == streamed.id and stepped.stream
    assert stepped.output_tokens == streamed.usage.output_tokens


def test_item_reference_resends_the_callers_stored_item(site: Site, fake_upstream: FakeOpenAI):
    """A stored response's input and output items, named by id alone, are sent upstream in
    their place and stored as the items themselves; another project's key gets OpenAI's 404."""
    client = site.client()
    first = client.responses.create(model="oa", input="REF-SOURCE-9031")
    question = str(client.responses.input_items.list(first.id).data[0].id)
    answer = str(first.output[0].id)
    second = client.responses.create(
        model="oa",
        input=[
            {"type": "item_reference", "id": question},
            {"type": "item_reference", "id": answer},
            {"role": "user", "content": "REF-FOLLOW-UP"},
        ],
    )
    assert second.output_text == "echo: REF-FOLLOW-UP"
    sent = fake_upstream.last_request.json["messages"]
    assert [(m["role"], m["content"]) for m in sent] == [
        ("user", "REF-SOURCE-9031"),
        ("assistant", "echo: REF-SOURCE-9031"),
        ("user", "REF-FOLLOW-UP"),
    ]
    listed = client.responses.input_items.list(second.id, order="asc").data
    assert [item.id for item in listed[:2]] == [question, answer]
    assert all(item.type == "message" for item in listed)
    # Alone, with previous_response_id, and streamed.
    alone = client.responses.create(model="oa", input=[{"type": "item_reference", "id": question}])
    assert alone.output_text == "echo: REF-SOURCE-9031"
    chained = client.responses.create(
        model="oa",
        input=[{"type": "item_reference", "id": question}],
        previous_response_id=second.id,
    )
    assert chained.output_text == "echo: REF-SOURCE-9031"
    sent = fake_upstream.last_request.json["messages"]
    assert len(sent) == 5 and sent[-1]["content"] == "REF-SOURCE-9031"  # 3, an answer, the ref
    with client.responses.stream(
        model="oa",
        input=[{"type": "item_reference", "id": answer}, {"role": "user", "content": "s"}],
    ) as stream:
        assert stream.get_final_response().output_text == "echo: s"
    for who, ref in (("b", question), ("a", "msg_does_not_exist")):
        raw = site.client(who).responses.with_raw_response
        with pytest.raises(openai.NotFoundError) as caught:
            raw.create(model="oa", input=[{"role": "user", "content": "x"}, {"id": ref}])
        error = caught.value.response.json()["error"]
        assert error["param"] == "input[1].id"
        assert error["message"].startswith(f"Item with id '{ref}' not found")


def test_item_reference_in_background_and_in_conversations(site: Site):
    client = site.client()
    conv = client.conversations.create(
        items=[{"type": "message", "role": "user", "content": "CONV-ITEM-5120"}]
    )
    seed = str(client.conversations.items.list(conv.id).data[0].id)
    queued = client.responses.create(
        model="oa", input=[{"type": "item_reference", "id": seed}], background=True
    )

    def completed() -> Any:
        found = client.responses.retrieve(queued.id)
        return found if found.status == "completed" else None

    done = wait_until(completed, "the background response to complete")
    assert done.output_text == "echo: CONV-ITEM-5120"
    other = client.conversations.create()
    client.conversations.items.create(other.id, items=[{"type": "item_reference", "id": seed}])
    copied = client.conversations.items.list(other.id).data
    assert [(item.id, item.type) for item in copied] == [(seed, "message")]
    with pytest.raises(openai.NotFoundError):
        site.client("b").conversations.create(items=[{"type": "item_reference", "id": seed}])
