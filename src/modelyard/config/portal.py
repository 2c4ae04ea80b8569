"""The ``portal:`` section: how long a portal session lives.

A session ends after ``session_idle_s`` without a page (the idle clock is written at most once
a minute, so it is exact to a minute), and in any case ``session_max_s`` after sign-in; then the
browser signs in again. Sessions are kept in the store when the server has one (every worker
and replica honours them), else in the process's memory.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PortalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    session_idle_s: int = Field(1800, ge=60, le=7 * 86400)
    session_max_s: int = Field(12 * 3600, ge=300, le=30 * 86400)
