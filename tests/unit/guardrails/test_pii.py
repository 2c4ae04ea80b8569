"""PII detection: positives, negatives and adversarial formatting."""

from __future__ import annotations

import pytest

from modelyard.guardrails.pii import ascii_digits, luhn_ok, pii_guard

ALL = pii_guard({})


def found(text: str) -> list[tuple[str, str]]:
    return [(f.category, text[f.start : f.end]) for f in ALL.scan(text)]


@pytest.mark.parametrize(
    ("text", "category", "value"),
    [
        ("write to bob.smith+x@example.co.uk today", "email", "bob.smith+x@example.co.uk"),
        ("call +44 20 7946 0958 please", "phone", "+44 20 7946 0958"),
        ("call (415) 555-2671 please", "phone", "(415) 555-2671"),
        ("card 4111 1111 1111 1111 ok", "card", "4111 1111 1111 1111"),
        ("card 4111-1111-1111-1111 ok", "card", "4111-1111-1111-1111"),
        ("card 4111111111111111 ok", "card", "4111111111111111"),
        (
            "card ４１１１ １１１１ １１１１ １１１１ ok",
            "card",
            "４１１１ １１１１ １１１１ １１１１",
        ),
        ("iban GB82 WEST 1234 5698 7654 32 ok", "iban", "GB82 WEST 1234 5698 7654 32"),
        ("iban DE89370400440532013000 ok", "iban", "DE89370400440532013000"),
        ("ssn 536-90-4399 ok", "national_id", "536-90-4399"),
        ("dni 54362315K ok", "national_id", "54362315K"),
        ("cf RCCMNL83S18D969H ok", "national_id", "RCCMNL83S18D969H"),
        ("host 192.168.1.20 down", "ip", "192.168.1.20"),
        ("host 2001:db8::1 down", "ip", "2001:db8::1"),
        ("aws AKIAIOSFODNN7EXAMPLE", "secret", "AKIAIOSFODNN7EXAMPLE"),
        (
            "gh ghp_1234567890abcdefghijABCDEFGHIJ123456",
            "secret",
            "ghp_1234567890abcdefghijABCDEFGHIJ123456",
        ),
        (
            "key sk-proj-abcdefghij0123456789ABCDEFGH",
            "secret",
            "sk-proj-abcdefghij0123456789ABCDEFGH",
        ),
    ],
)
def test_finds(text: str, category: str, value: str) -> None:
    assert (category, value) in found(text)


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112 fails Luhn",
        "iban GB82 WEST 1234 5698 7654 33 has a bad checksum",
        "ssn 000-12-3456 is not issuable",
        "version 1.2.3.4000 and 300.1.1.1 are not addresses",
        "revenue grew 12 percent in 3 regions in 2025",
        "the meeting is at 10:30 in room 4",
        "an address like bob at example dot com is not matched",
    ],
)
def test_negatives(text: str) -> None:
    assert found(text) == []


def test_entities_restrict_what_is_found() -> None:
    only_email = pii_guard({"entities": ["email"]})
    text = "bob@example.com 4111 1111 1111 1111"
    assert [f.category for f in only_email.scan(text)] == ["email"]


def test_bad_settings_name_the_setting() -> None:
    with pytest.raises(ValueError, match="entities"):
        pii_guard({"entities": ["emails"]})
    with pytest.raises(ValueError, match="region"):
        pii_guard({"region": "XX"})
    with pytest.raises(ValueError, match="unknown settings"):
        pii_guard({"entity": ["email"]})


def test_unicode_digits_keep_offsets() -> None:
    text = "x ٤١١١١١١١١١١١١١١١ y"  # Arabic-Indic digits
    assert len(ascii_digits(text)) == len(text)
    assert found(text) == [("card", "٤١١١١١١١١١١١١١١١")]


def test_luhn() -> None:
    assert luhn_ok("79927398713")
    assert not luhn_ok("79927398710")
