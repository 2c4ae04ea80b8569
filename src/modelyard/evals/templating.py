"""The reports' HTML templates: autoescaped Jinja2, so every attribute value is quoted in the
template and every value escaped (an unquoted ``stroke=#222/>`` swallowed the slash and left
SVG elements open in browsers)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jinja2

_TEMPLATES = Path(__file__).resolve().parent / "templates"


@functools.cache
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(name: str, **values: Any) -> str:
    return _env().get_template(name).render(values)
