"""Shared bits of the CLI commands that talk to a running server."""

from __future__ import annotations

import os


def auth_headers(api_key: str | None) -> dict[str, str]:
    key = api_key or os.environ.get("MODELYARD_API_KEY")
    return {"authorization": f"Bearer {key}"} if key else {}
