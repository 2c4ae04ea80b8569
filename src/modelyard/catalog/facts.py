"""Our curated facts file (``data/facts.json``) and the model-id normalisation that finds them.

A provider names one model many ways: ``gpt-4o-2024-08-06`` (a dated snapshot),
``us.anthropic.claude-3-5-sonnet-20241022-v2:0`` (a Bedrock inference profile),
``models/gemini-2.5-flash`` (Gemini's resource name), ``meta-llama/Llama-3.3-70B-Instruct-Turbo``
(an organisation prefix), ``accounts/fireworks/models/llama-v3p3-70b-instruct``.
:func:`candidates` lists the ids to try, most specific first, by stripping only such decorations
(never a word of the model's name, so ``gpt-4o-mini`` never becomes ``gpt-4o``).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

_BEDROCK_REGIONS = ("us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au.", "ca.", "regional.")
_BEDROCK_MAKERS = (
    "anthropic.",
    "meta.",
    "amazon.",
    "mistral.",
    "deepseek.",
    "openai.",
    "cohere.",
    "ai21.",
    "writer.",
    "qwen.",
)
_PATH_PREFIX = re.compile(r"^(?:models/|accounts/[^/]+/models/|publishers/[^/]+/models/)")
# OpenRouter's routing variants of one model.
_VARIANT_SUFFIX = re.compile(r":(?:free|thinking|beta|extended|nitro|floor|online)$")
_VERSION_SUFFIX = re.compile(r"-v\d+(?::\d+)?$")
# Snapshot suffixes: -2024-08-06, -20241022, -0613 / -1212 / -2411, -001, -latest.
_SNAPSHOT_SUFFIX = re.compile(r"(?:-\d{4}-\d{2}-\d{2}|-\d{8}|-\d{4}|-\d{3}|-latest)$")


@dataclass(frozen=True, slots=True)
class Facts:
    id: str
    vendor: str
    home: str | None  # the provider type that serves it first-hand, if any
    context_window: int | None
    max_output: int | None
    input_modalities: tuple[str, ...] | None
    tools: bool | None
    json_schema: bool | None
    reasoning: bool | None
    aliases: tuple[str, ...] = ()

    @property
    def images(self) -> bool | None:
        return None if self.input_modalities is None else "image" in self.input_modalities


def candidates(model: str) -> list[str]:
    """Ids to look ``model`` up by, most specific first, all in lower case."""
    out: list[str] = []

    def add(value: str) -> None:
        if value and value not in out:
            out.append(value)

    current = model.strip().lower()
    add(current)
    current = _VARIANT_SUFFIX.sub("", _PATH_PREFIX.sub("", current))
    add(current)
    for region in _BEDROCK_REGIONS:
        if current.startswith(region):
            current = current.removeprefix(region)
            add(current)
            break
    for maker in _BEDROCK_MAKERS:
        if current.startswith(maker):
            current = current.removeprefix(maker)
            add(current)
            break
    if "/" in current:
        current = current.rsplit("/", 1)[1]
        add(current)
    current = _VERSION_SUFFIX.sub("", current)
    add(current)
    if current.startswith("claude-"):
        current = current.replace(".", "-")  # OpenRouter writes claude-3.5-sonnet
        add(current)
    while (stripped := _SNAPSHOT_SUFFIX.sub("", current)) != current:
        current = stripped
        add(current)
    return out


@functools.cache
def facts_index() -> dict[str, Facts]:
    """Every curated model by its id and by each alias (lower case)."""
    index: dict[str, Facts] = {}
    for facts in all_facts():
        for key in (facts.id, *facts.aliases):
            index.setdefault(key.lower(), facts)
    return index


@functools.cache
def all_facts() -> tuple[Facts, ...]:
    raw = resources.files("modelyard.catalog").joinpath("data/facts.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(raw)
    families: dict[str, dict[str, Any]] = data["families"]
    return tuple(_facts({**families[m["family"]], **m}) for m in data["models"])


def _facts(entry: dict[str, Any]) -> Facts:
    modalities = entry.get("input")
    return Facts(
        id=entry["id"],
        vendor=entry["vendor"],
        home=entry.get("home"),
        context_window=entry.get("context"),
        max_output=entry.get("max_output"),
        input_modalities=None if modalities is None else tuple(modalities),
        tools=entry.get("tools"),
        json_schema=entry.get("json_schema"),
        reasoning=entry.get("reasoning"),
        aliases=tuple(entry.get("aliases", ())),
    )


def find_facts(*models: str) -> Facts | None:
    index = facts_index()
    for model in models:
        for key in candidates(model):
            found = index.get(key)
            if found is not None:
                return found
    return None
