"""The allowed-languages guard (py3langid's model, offline)."""

from __future__ import annotations

import pytest

from modelyard.guardrails import language
from modelyard.guardrails.language import language_guard

GUARD = language_guard({"allowed": ["en", "fr"]})


@pytest.mark.parametrize(
    "text",
    [
        "Could you summarise the attached quarterly report for the board, please?",
        "Pouvez-vous résumer le rapport trimestriel pour le conseil, s'il vous plaît ?",
        "Hi!",  # too short to judge
    ],
)
def test_allowed_or_unjudged(text: str) -> None:
    assert GUARD.scan(text) == []


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("Können Sie bitte den Quartalsbericht für den Vorstand zusammenfassen?", "language_de"),
        (
            "¿Podría resumir el informe trimestral para la junta directiva, por favor?",
            "language_es",
        ),
    ],
)
def test_other_languages_are_found(text: str, category: str) -> None:
    (finding,) = GUARD.scan(text)
    assert finding.category == category and finding.score >= 0.8


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="allowed"):
        language_guard({"allowed": ["english"]})
    with pytest.raises(ValueError, match="allowed"):
        language_guard({})
    with pytest.raises(ValueError, match="min_confidence"):
        language_guard({"allowed": ["en"], "min_confidence": 2})


def test_the_model_is_loaded_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    from py3langid.langid import LanguageIdentifier  # type: ignore[import-untyped]  # no stubs

    loads: list[str] = []
    load = LanguageIdentifier.from_model_file

    def counted(*args: object, **kwargs: object) -> object:
        loads.append("load")
        return load(*args, **kwargs)

    monkeypatch.setattr(LanguageIdentifier, "from_model_file", counted)
    language.identifier.cache_clear()  # as in a new process
    first = language_guard({"allowed": ["en"]})
    second = language_guard({"allowed": ["fr"], "min_chars": 5})  # another guard, or a reload
    assert loads == ["load"]
    assert first.identifier is second.identifier
    assert [f.category for f in second.scan("Guten Morgen, wie geht es Ihnen heute?")] == [
        "language_de"
    ]
