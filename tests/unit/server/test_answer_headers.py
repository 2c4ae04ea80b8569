"""An answer's own headers are made as byte pairs (``served_raw``, ``Ticket.raw_headers``,
``Reservation.raw_headers``): the bytes and their order must be the ones Starlette would send
for the same headers by name, in the order the answer has always given them."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st
from starlette.responses import Response

from modelyard.core.chat import Usage
from modelyard.server import anthropic_routes, openai_routes
from modelyard.server.chat_route import Dialect, served_headers, served_raw
from modelyard.server.http import JSONBody
from modelyard.services.chat import Served
from modelyard.services.metering import Call, Ticket
from modelyard.tenancy.keys import Principal
from modelyard.tenancy.limits import UNIT, Reservation, Tightest, _pairs_of, format_duration

# Names from a config: any text a header value can carry (latin-1, no line breaks).
_config_text = st.text(st.characters(max_codepoint=255, exclude_characters="\r\n"), max_size=20)
_bucket = st.tuples(
    st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**12)
)  # (remaining, limit, level)


def _ticket(tightest: Tightest | None, cost: int | None, guardrails: str | None) -> Ticket:
    call = Call("r1", "/v1/chat/completions", "m", lambda: Usage(1, 1))
    ticket = Ticket(call, Principal("k1"), time.perf_counter(), time.time())
    if tightest is not None:
        ticket.reservation = Reservation((), 0, 0, "2026-12-07", "2026-12", tightest)
    ticket.cost_micros = cost
    ticket.show_guardrails = guardrails is not None
    ticket.guardrails = guardrails or None
    return ticket


@given(
    dialect=st.sampled_from([openai_routes.DIALECT, anthropic_routes.DIALECT]),
    served=st.builds(
        Served,
        _config_text,
        _config_text,
        _config_text,
        st.integers(1, 9),
        st.none() | _config_text,
    ),
    tightest=st.none() | st.tuples(_bucket, _bucket).map(lambda b: (*b[0], *b[1])),
    cost=st.none() | st.integers(0, 10**9),
    guardrails=st.none() | _config_text,
)
def test_an_answers_headers_are_the_bytes_starlette_would_send_in_their_order(
    dialect: Dialect,
    served: Served,
    tightest: Tightest | None,
    cost: int | None,
    guardrails: str | None,
) -> None:
    ticket = _ticket(tightest, cost, guardrails)
    by_name = {
        **dialect.id_headers("rid-1"),
        **ticket.headers(),
        "x-modelyard-deployment": served.deployment,
        "x-modelyard-provider": served.provider,
        "x-modelyard-model": served.model,
        "x-modelyard-attempts": str(served.attempts),
        **({"x-modelyard-route": served.route} if served.route is not None else {}),
    }
    ours = JSONBody(b"{}", 200, served_raw(dialect, served, "rid-1", ticket))
    theirs = Response(b"{}", headers=by_name, media_type="application/json")
    assert ours.raw_headers == theirs.raw_headers
    assert served_headers(dialect, served, "rid-1", ticket) == by_name


def test_the_messages_api_sends_both_id_headers_first() -> None:
    served = Served("modèle", "up", "m", 2)
    raw = served_raw(anthropic_routes.DIALECT, served, "rid-1")
    assert raw[:2] == [(b"x-request-id", b"rid-1"), (b"request-id", b"rid-1")]
    assert (b"x-modelyard-deployment", "modèle".encode("latin-1")) in raw
    assert served_raw(openai_routes.DIALECT, served, "rid-1")[0] == (b"x-request-id", b"rid-1")
    assert served_raw(openai_routes.DIALECT, served, "rid-1")[1][0] != b"request-id"


def test_each_answer_gets_its_own_list() -> None:
    """The target's pairs are shared (encoded once): the list they are copied into is not."""
    served = Served("d", "p", "m")
    first = served_raw(openai_routes.DIALECT, served, "rid-1")
    first.append((b"x-extra", b"1"))
    assert (b"x-extra", b"1") not in served_raw(openai_routes.DIALECT, served, "rid-2")


@given(requests=_bucket, tokens=_bucket)
def test_the_ratelimit_pairs_are_the_headers_values(
    requests: tuple[int, int, int], tokens: tuple[int, int, int]
) -> None:
    expected: list[tuple[bytes, bytes]] = []
    for kind, (left, limit, level) in (("requests", requests), ("tokens", tokens)):
        if limit:
            wait = -(-(limit * UNIT - level) // limit)
            expected += [
                (f"x-ratelimit-limit-{kind}".encode(), str(limit).encode()),
                (f"x-ratelimit-remaining-{kind}".encode(), str(left).encode()),
                (f"x-ratelimit-reset-{kind}".encode(), format_duration(wait).encode()),
            ]
    assert _pairs_of(*requests, *tokens) == expected
