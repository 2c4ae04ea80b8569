"""PII detection: e-mail, phone, payment card, IBAN, national ids, IP addresses, secrets.

Candidates are found by cheap patterns and confirmed by a real validator: phone numbers by
``phonenumbers`` (Google's libphonenumber metadata), cards by the Luhn checksum, IBANs and
national ids by ``python-stdnum`` (checksums and formats per country), IPs by ``ipaddress``,
secrets by the detectors of ``detect-secrets`` plus a few current key formats it predates.
Unicode decimal digits (fullwidth, Arabic-Indic ...) are read as their ASCII digits: the text
is mapped character for character, so every span is a span of the original text.
"""

from __future__ import annotations

import ipaddress
import re
import sys
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

import phonenumbers
from stdnum import iban as std_iban
from stdnum.br import cpf
from stdnum.es import dni
from stdnum.fr import nir
from stdnum.it import codicefiscale
from stdnum.us import ssn

from modelyard.guardrails.model import Finding

ENTITIES: Final = ("email", "phone", "card", "iban", "national_id", "ip", "secret")

# Every Unicode decimal digit that is not ASCII, to its ASCII digit (one character for one).
_DIGITS: Final[Mapping[int, str]] = MappingProxyType(
    {
        c: str(unicodedata.decimal(chr(c)))
        for c in range(128, sys.maxunicode + 1)
        if unicodedata.category(chr(c)) == "Nd"
    }
)
_ASCII_RE: Final = re.compile(r"[^\x00-\x7f]")

_EMAIL: Final = re.compile(r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63})+")
# 13 to 19 digits, single spaces or dashes between them allowed.
_CARD: Final = re.compile(r"(?<![\d.])\d(?:[ \-]?\d){12,18}(?![\d])")
_IBAN: Final = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_IPV4: Final = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
# Where a phone number may be: 7+ digits with the separators people write between them.
_PHONE_RUN: Final = re.compile(r"\+?\(?\d[\d \t().\-/]{5,24}\d")
_IPV6: Final = re.compile(
    r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Fa-f:])"
)

# National ids: (name, candidate pattern, stdnum validator).
_NATIONAL: Final[tuple[tuple[str, re.Pattern[str], Callable[[str], bool]], ...]] = (
    ("us_ssn", re.compile(r"(?<!\d)\d{3}[- ]?\d{2}[- ]?\d{4}(?!\d)"), ssn.is_valid),
    ("es_dni", re.compile(r"\b\d{8}-?[A-Z]\b"), dni.is_valid),
    (
        "it_codice_fiscale",
        re.compile(r"\b[A-Z]{6}\d{2}[A-Z]\d{2}[A-Z]\d{3}[A-Z]\b"),
        codicefiscale.is_valid,
    ),
    (
        "fr_nir",
        re.compile(r"(?<!\d)[12] ?\d{2} ?\d{2} ?\d{2} ?\d{3} ?\d{3} ?\d{2}(?!\d)"),
        nir.is_valid,
    ),
    ("br_cpf", re.compile(r"(?<!\d)\d{3}\.?\d{3}\.?\d{3}-?\d{2}(?!\d)"), cpf.is_valid),
)

# Every secret pattern needs a token of 16+ key characters (keys, tokens, key bodies are long);
# prose rarely has one, and the patterns, one alternation of ~40, cost ~10x more than this.
_LONG_TOKEN: Final = re.compile(r"[A-Za-z0-9_\-+/=]{16,}")

# Key formats newer than detect-secrets 1.5's detectors (its OpenAI pattern is the 2023 one).
_OWN_SECRETS: Final = (
    re.compile(r"\bsk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,}"),
    re.compile(r"\bsk-ant-[a-z0-9]{2,10}-[A-Za-z0-9_\-]{20,}"),
    re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"),
    re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),
)


def ascii_digits(text: str) -> str:
    """``text`` with every Unicode decimal digit as its ASCII digit (same length)."""
    if _ASCII_RE.search(text) is None:
        return text
    return text.translate(_DIGITS)


def luhn_ok(digits: str) -> bool:
    total = 0
    for n, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if n % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _secret_patterns() -> tuple[re.Pattern[str], ...]:
    """detect-secrets' regex detectors (not its entropy or keyword heuristics, which flag
    ordinary words and hashes in prose), then our own."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    skip = {"IPPublicDetector", "KeywordDetector", "BasicAuthDetector"}
    found: list[re.Pattern[str]] = []
    plugin: type
    for plugin in get_mapping_from_secret_type_to_class().values():
        if plugin.__name__ not in skip:
            found.extend(getattr(plugin, "denylist", ()) or ())
    return (*found, *_OWN_SECRETS)


@dataclass(frozen=True, slots=True)
class PiiDetector:
    """Finds the configured ``entities``; ``region`` is the default phone-number region for
    numbers written without a country code."""

    entities: frozenset[str]
    region: str = "US"
    secrets: re.Pattern[str] | None = None  # every secret pattern, as one alternation

    def scan(self, text: str) -> list[Finding]:
        if not text:
            return []
        norm = ascii_digits(text)
        found: list[Finding] = []
        ents = self.entities
        if "email" in ents and "@" in norm:
            found += [Finding("email", m.start(), m.end()) for m in _EMAIL.finditer(norm)]
        if self.secrets is not None and _LONG_TOKEN.search(norm) is not None:
            found += [Finding("secret", m.start(), m.end()) for m in self.secrets.finditer(norm)]
        if "iban" in ents:
            found += _checked("iban", _IBAN, norm, std_iban.is_valid)
        if "card" in ents:
            found += _checked("card", _CARD, norm, _card_ok)
        if "national_id" in ents:
            for _name, pattern, valid in _NATIONAL:
                found += _checked("national_id", pattern, norm, valid)
        if "ip" in ents:
            found += _checked("ip", _IPV4, norm, _ip_ok)
            if "::" in norm or norm.count(":") >= 2:
                found += _checked("ip", _IPV6, norm, _ip_ok)
        if "phone" in ents:
            found += self._phones(norm)
        return _disjoint(found)

    def _valid_phone(self, run: str) -> bool:
        if run.count("(") != run.count(")"):
            return False
        return _valid(run, self.region)

    def _phones(self, text: str) -> list[Finding]:
        # libphonenumber's matcher is pure Python and slow on long prose: each digit run that
        # could be a number is first parsed and validated whole (the common case, ~6x faster);
        # only a run that is not one valid number goes through the matcher, with the
        # characters around it for context.
        found: list[Finding] = []
        for run in _PHONE_RUN.finditer(text):
            if self._valid_phone(run.group()):
                found.append(Finding("phone", run.start(), run.end()))
                continue
            lo = max(0, run.start() - 1)
            part = text[lo : run.end() + 1]
            matcher = phonenumbers.PhoneNumberMatcher(
                part, self.region, leniency=phonenumbers.Leniency.VALID
            )
            found += [Finding("phone", lo + m.start, lo + m.end) for m in matcher]
        return found


def _valid(number: str, region: str) -> bool:
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(parsed)


def _card_ok(candidate: str) -> bool:
    digits = candidate.replace(" ", "").replace("-", "")
    return 13 <= len(digits) <= 19 and luhn_ok(digits)


def _ip_ok(candidate: str) -> bool:
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


def _checked(
    category: str, pattern: re.Pattern[str], text: str, valid: Callable[[str], bool]
) -> list[Finding]:
    return [
        Finding(category, m.start(), m.end()) for m in pattern.finditer(text) if valid(m.group())
    ]


def _disjoint(found: Sequence[Finding]) -> list[Finding]:
    """Findings by position; of overlapping ones the earlier (then the longer) wins, so the
    detector order above decides (an IBAN's digits are not also a card)."""
    out: list[Finding] = []
    end = -1
    for f in sorted(found, key=lambda f: (f.start, -f.end)):
        if f.start >= end:
            out.append(f)
            end = f.end
        elif f.end > end:  # overlapping and longer: widen the one kept
            last = out[-1]
            out[-1] = Finding(last.category, last.start, f.end, last.score)
            end = f.end
    return out


def pii_guard(settings: Mapping[str, Any]) -> PiiDetector:
    """Settings: ``entities`` (a list, default all of ``ENTITIES``), ``region`` (ISO 3166
    alpha-2, default ``US``)."""
    unknown = set(settings) - {"entities", "region"}
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; accepted: entities, region")
    entities = settings.get("entities", ENTITIES)
    if not isinstance(entities, list | tuple) or not set(entities) <= set(ENTITIES):
        raise ValueError(f"entities: a list of {', '.join(ENTITIES)}; got {entities!r}")
    region = settings.get("region", "US")
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"region: an ISO 3166 alpha-2 region such as US or FR; got {region!r}")
    chosen = frozenset(entities)
    secrets = None
    if "secret" in chosen:  # one pass over the text instead of one per detector
        secrets = re.compile("|".join(f"(?:{p.pattern})" for p in _secret_patterns()))
    return PiiDetector(chosen, region, secrets)
