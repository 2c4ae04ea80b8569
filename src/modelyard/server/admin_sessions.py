"""``DELETE /admin/v1/users/{subject}/sessions``: sign a person out of the portal everywhere
(``services/sign_outs.py``); ``SESSION_OPERATIONS`` also feeds the OpenAPI document."""

from __future__ import annotations

from modelyard.server.admin_http import Call
from modelyard.server.admin_openapi import Operation
from modelyard.services import sign_outs


async def end_user_sessions(call: Call) -> sign_outs.SessionsEnded:
    subject = call.given(sign_outs.UserPath).subject
    return await sign_outs.end_sessions_of(call.store, call.principal, subject)


SESSION_OPERATIONS = (
    Operation(
        "DELETE", "/users/{subject}/sessions",
        "End every portal session of a person signed in through single sign-on (operator)",
        end_user_sessions, answer=(200, sign_outs.SessionsEnded, "How many ended"),
        errors=(400, 401, 403, 503), path_params=sign_outs.UserPath, audit="user.sign_out",
    ),
)  # fmt: skip
