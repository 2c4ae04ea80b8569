"""Ending portal sessions from the admin API: every session of a person signed in through
single sign-on (an operator's call, for someone who left or whose access was withdrawn at the
provider). A revoked key's sessions end with the revocation itself (``TenancyAdmin``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from modelyard.services.admin_models import Query, Response
from modelyard.services.tenancy import require_operator
from modelyard.store import Store
from modelyard.store.portal_sessions import PortalSessions
from modelyard.tenancy.keys import Principal


class UserPath(Query):
    subject: str = Field(min_length=1, max_length=255, description="the provider's subject")


class SessionsEnded(Response):
    object: Literal["sessions.ended"] = "sessions.ended"
    user: str
    ended: int = Field(description="how many portal sessions ended")


async def end_sessions_of(store: Store, principal: Principal, subject: str) -> SessionsEnded:
    """End every portal session of ``subject`` (operator), on every replica at once."""
    require_operator(principal)
    async with store.transaction() as db:
        ended = await PortalSessions(db).remove_of(subject=subject)
    return SessionsEnded(user=subject, ended=ended)
