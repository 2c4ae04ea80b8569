"""Observability of a real ``modelyard serve --workers 2``: one scrape counts every worker's
requests (Prometheus text parser), traces reach an OTLP receiver started here with the client's
``traceparent`` honoured and passed upstream, and every JSON log line carries the request's
facts and none of the keys or upstream secrets used."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2 as httpx
import openai
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.openai_chat import REFUSAL
from tests.fakes.openai_upstream import FakeOpenAI
from tests.genai_messages import output_messages
from tests.integration.conftest import UPSTREAM_KEY
from tests.integration.server import run_server
from tests.otlp_receiver import attributes, otlp_receiver
from tests.waiting import wait_until

CLIENT_KEY = "sk-client-observed-0123456789abcdef"
SCRAPE_TOKEN = "scrape-token-observed-0123456789"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
REQUESTS = 24


def _config(fake: FakeOpenAI, collector: str) -> dict[str, Any]:
    upstream = {"type": "openai", "base_url": fake.base_url, "api_key": "env::UP_KEY"}
    return {
        "local": {"enabled": False},
        "server": {"api_keys": [CLIENT_KEY]},
        "providers": {"fake": upstream, "spare": upstream},
        "deployments": {
            "chat": {"targets": [{"provider": "fake", "model": "gpt-4o-mini"}]},
            "failover": {
                "targets": [
                    {"provider": "fake", "model": "fail-503-noretry"},
                    {"provider": "spare", "model": "gpt-4o-mini"},
                ]
            },
        },
        # Every failover call must try the failing target first: a worker that took five or
        # more of them in a row would otherwise open its breaker and skip it (a loaded machine
        # can hand one worker all six).
        "routing": {"breaker": {"failures": REQUESTS}},
        "observability": {
            "metrics": {"enabled": True, "token": SCRAPE_TOKEN},
            "tracing": {"enabled": True, "exporter": "otlp_http", "endpoint": collector},
            "logs": {"format": "json"},
        },
    }


def _chat_count(text: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "modelyard_requests_total" and s.labels["status_class"] == "2xx"
    )


def test_two_workers_one_scrape_traces_and_clean_json_logs(
    fake_upstream: FakeOpenAI, tmp_path: Path
) -> None:
    with otlp_receiver("http") as receiver:
        config = _config(fake_upstream, receiver.endpoint)
        env = {"UP_KEY": UPSTREAM_KEY}
        with run_server(tmp_path, config, env, extra_args=("--workers", "2")) as server:
            for n in range(REQUESTS):  # a fresh connection each: both workers take some
                with openai.OpenAI(
                    base_url=server.base_url, api_key=CLIENT_KEY, max_retries=0
                ) as client:
                    model = "failover" if n % 4 == 0 else "chat"
                    messages: Any = [{"role": "user", "content": f"hello {n}"}]
                    if n % 3 == 0:
                        stream = client.chat.completions.create(
                            model=model, messages=messages, stream=True
                        )
                        assert "".join(
                            c.choices[0].delta.content or "" for c in stream if c.choices
                        )
                    else:
                        client.chat.completions.create(model=model, messages=messages)
            traced = httpx.post(
                f"{server.base_url}/chat/completions",
                json={"model": "chat", "messages": [{"role": "user", "content": "traced"}]},
                headers={
                    "authorization": f"Bearer {CLIENT_KEY}",
                    "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01",
                },
                timeout=30,
            )
            assert traced.status_code == 200
            upstream_parent = fake_upstream.last_request.headers["traceparent"]
            # Each worker hands its tallies to the shared files every second: wait for that,
            # then every scrape, whichever worker answers it, must count every worker's calls.
            wait_until(
                lambda: (
                    _chat_count(httpx.get(f"{server.url}/metrics", timeout=30).text) == REQUESTS + 1
                ),
                "every worker's calls in a scrape",
            )
            scrapes = [httpx.get(f"{server.url}/metrics", timeout=30) for _ in range(6)]
            workers = {p.name.split("_")[-1] for p in (tmp_path / "data/prometheus").glob("*.db")}
        # A server and an attempt span per call, and one more per failover's failed attempt.
        spans = receiver.wait_for_spans(2 * (REQUESTS + 1) + len(range(0, REQUESTS, 4)))
    for scrape in scrapes:  # whichever worker answered, it counted both
        assert scrape.status_code == 200
        assert _chat_count(scrape.text) == REQUESTS + 1
    assert len(workers) >= 2
    # The client's trace: our server span under its parent, the attempt under ours, and the
    # attempt's own context sent upstream.
    mine = [s for s in spans if s.trace_id.hex() == TRACE_ID]
    server_span = next(s for s in mine if s.name == "POST /v1/chat/completions")
    assert server_span.parent_span_id.hex() == PARENT_ID
    client_span = next(s for s in mine if s.name == "chat gpt-4o-mini")
    assert client_span.parent_span_id == server_span.span_id
    assert upstream_parent.split("-")[1:3] == [TRACE_ID, client_span.span_id.hex()]
    failovers = [s for s in spans if s.name == "chat fail-503-noretry"]
    assert len(failovers) == len(range(0, REQUESTS, 4))
    _check_logs(server.log())


def _check_logs(log: str) -> None:
    lines = log.splitlines()
    for secret in (CLIENT_KEY, UPSTREAM_KEY, SCRAPE_TOKEN):
        assert not [line for line in lines if secret in line]
    records = [json.loads(line) for line in lines if line.startswith("{")]
    access = [r for r in records if r["logger"] == "modelyard.access"]
    chat = [r for r in access if r["route"] == "/v1/chat/completions"]
    assert len(chat) == REQUESTS + 1
    for record in chat:
        assert record["status"] == 200 and record["duration_ms"] > 0
        assert "refused" not in record
        assert record["request_id"] and len(record["trace_id"]) == 32
        assert record["key_id"] and record["deployment"] in ("chat", "failover")
        assert record["provider"] in ("fake", "spare")
    assert any(r["trace_id"] == TRACE_ID for r in chat)
    failovers = [r for r in records if r.get("event") == "failover"]
    assert len(failovers) == len(range(0, REQUESTS, 4))
    assert all("UpstreamUnavailable" in r["reason"] for r in failovers)


def test_a_refusal_is_marked_counted_and_timed(fake_upstream: FakeOpenAI, tmp_path: Path) -> None:
    """A refusal through ``modelyard serve``: the attempt and server spans of each call say so,
    the refusals are counted by the target that answered, a stream of nothing but a refusal
    has its first token, the access line carries ``refused`` (a plain call's does not), and
    its words are in no span, metric or log line."""
    refuse: Any = [{"role": "user", "content": "please refuse this"}]
    with otlp_receiver("http") as receiver:
        config = _config(fake_upstream, receiver.endpoint)
        with run_server(tmp_path, config, {"UP_KEY": UPSTREAM_KEY}) as server:
            with openai.OpenAI(base_url=server.base_url, api_key=CLIENT_KEY, max_retries=0) as c:
                whole = c.chat.completions.create(model="chat", messages=refuse)
                assert whole.choices[0].message.refusal == REFUSAL
                chunks = list(c.chat.completions.create(model="chat", messages=refuse, stream=True))
                assert "".join(x.choices[0].delta.refusal or "" for x in chunks if x.choices)
                plain = c.chat.completions.create(model="chat", messages=[_HELLO])
                assert plain.choices[0].message.refusal is None
            scrape = ""

            def counted() -> bool:
                nonlocal scrape
                scrape = httpx.get(f"{server.url}/metrics", timeout=30).text
                return _sample(scrape, "modelyard_model_refusals_total") == 2

            wait_until(counted, "both refusals in a scrape")
        spans = receiver.wait_for_spans(6)
    assert _sample(scrape, "modelyard_time_to_first_token_seconds_count") == 1
    marked = [s.name for s in spans if attributes(s).get("modelyard.response.refused") is True]
    assert sorted(marked) == sorted(["chat gpt-4o-mini", "POST /v1/chat/completions"] * 2)
    for span in spans:
        assert REFUSAL not in str(attributes(span))
    log = server.log()
    assert REFUSAL not in log
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert len([r for r in records if r.get("event") == "model_refusal"]) == 2
    # The access lines: the two refused calls say so, the plain one has no such key.
    access = [r for r in records if r["logger"] == "modelyard.access"]
    chat = [r.get("refused", "absent") for r in access if r["route"] == "/v1/chat/completions"]
    assert chat == [True, True, "absent"]


_HELLO: Any = {"role": "user", "content": "hello"}


def _sample(text: str, name: str) -> float:
    """A sample's value for the ``chat`` deployment's target (0 when absent)."""
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and s.labels.get("deployment") == "chat"
    )


def test_captured_answers_are_output_messages_with_finish_reasons(
    fake_upstream: FakeOpenAI, tmp_path: Path
) -> None:
    """Content capture through ``modelyard serve``: each choice of a whole and of a streamed
    answer is an output message with the finish reason the conventions' schema requires."""
    asked: Any = [{"role": "user", "content": "tell me a long story about ships"}]
    with otlp_receiver("http") as receiver:
        config = _config(fake_upstream, receiver.endpoint)
        config["observability"]["tracing"]["capture_content"] = True
        with (
            run_server(tmp_path, config, {"UP_KEY": UPSTREAM_KEY}) as server,
            openai.OpenAI(base_url=server.base_url, api_key=CLIENT_KEY, max_retries=0) as c,
        ):
            whole = c.chat.completions.create(model="chat", messages=asked, n=2, max_tokens=2)
            assert [x.finish_reason for x in whole.choices] == ["length", "length"]
            assert list(c.chat.completions.create(model="chat", messages=asked, stream=True))
        spans = receiver.wait_for_spans(4)
    recorded = [
        output_messages(attributes(s)["gen_ai.output.messages"])
        for s in spans
        if s.name == "chat gpt-4o-mini"
    ]
    reasons = sorted([m["finish_reason"] for m in messages] for messages in recorded)
    assert reasons == [["length", "length"], ["stop"]]
