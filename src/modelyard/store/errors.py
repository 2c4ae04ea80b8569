"""Errors of the store, translated once from SQLAlchemy's at the session boundary."""

from __future__ import annotations

from modelyard.core.errors import InternalError


class StoreError(InternalError):
    """The database could not be reached or refused an operation."""


class VersionConflict(StoreError):
    """Another writer recorded the same row first (a unique constraint fired); retry."""
