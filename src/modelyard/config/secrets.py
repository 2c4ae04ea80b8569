"""Secret references in config: ``env::NAME``, ``file::PATH`` or a literal value.

A resolved secret never shows its value in ``repr``/``str``, so it cannot leak into a log line
or an error message by accident.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_PREFIX = "env::"
FILE_PREFIX = "file::"


class Secret:
    __slots__ = ("_source", "_value")

    def __init__(self, value: str, source: str = "literal") -> None:
        self._value = value
        self._source = source

    def reveal(self) -> str:
        return self._value

    @property
    def source(self) -> str:
        """Where the value came from (``env::NAME``, ``file::PATH``, ``literal``): safe to show."""
        return self._source

    def __repr__(self) -> str:
        return f"Secret({self._source}, ***)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    @classmethod
    def __get_pydantic_json_schema__(cls, _schema: object, _handler: object) -> dict[str, str]:
        # In the config file a secret is a string: the value itself, env::NAME or file::PATH.
        return {
            "type": "string",
            "format": "secret",
            "description": "a value, env::NAME or file::PATH",
        }


def resolve_secret(reference: str) -> Secret:
    """Resolve a reference; raises ``ValueError`` with a message fit for a config error."""
    if reference.startswith(ENV_PREFIX):
        name = reference[len(ENV_PREFIX) :]
        if not name:
            raise ValueError("env:: needs a variable name, as in env::OPENAI_API_KEY")
        value = os.environ.get(name)
        if value is None:
            raise ValueError(f"environment variable {name} is not set")
        return Secret(value, reference)
    if reference.startswith(FILE_PREFIX):
        path = Path(reference[len(FILE_PREFIX) :]).expanduser()
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"cannot read secret file {path}: {exc.strerror}") from exc
        return Secret(value, reference)
    return Secret(reference)
