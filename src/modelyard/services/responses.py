"""The Responses API's use case, in dialect-free terms (the wire shapes are the server's).

The hosted tools a request offers (``web_search``...) run on OpenAI's servers, not here. By the
deployment's ``hosted_tools`` setting they are left out of what the model is offered and
disclosed (``hosted_warnings``, shown as a header and in the response), or refused with a 400
naming them. Each upstream call of a response is a ledger row whose ``parent_id`` is the
response id (``Caller.parent_id``).
"""

from __future__ import annotations

from modelyard.core.errors import InvalidRequest
from modelyard.services.pipeline import Pipeline

PATH = "/v1/responses"


def hosted_warnings(pipeline: Pipeline, model: str, hosted: tuple[str, ...]) -> tuple[str, ...]:
    """The warnings that disclose hosted tools left out; a 400 where the deployment refuses."""
    if not hosted:
        return ()
    names = ", ".join(hosted)
    deployment = pipeline.gateway.table.get(model)
    if deployment is not None and deployment.hosted_tools == "refuse":
        raise InvalidRequest(
            f"tools: hosted tools are not available on deployment {deployment.name!r}: {names}; "
            "remove them (the deployment's hosted_tools setting is 'refuse')",
            param="tools",
            code="unsupported_tool",
        )
    return (f"hosted tools not offered to the model (this gateway does not run them): {names}",)
