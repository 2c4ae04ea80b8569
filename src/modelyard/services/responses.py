"""The Responses API's use case, in dialect-free terms (the wire shapes are the server's).

The hosted tools a request offers (``web_search``...) run on OpenAI's servers, not here. By the
deployment's ``hosted_tools`` setting they are left out of what the model is offered and
disclosed (``hosted_warnings``, shown as a header and in the response), or refused with a 400
naming them. Each upstream call of a response is a ledger row whose ``parent_id`` is the
response id (``Caller.parent_id``).
"""

from __future__ import annotations

from modelyard.core.chat import CHARS_PER_TOKEN, Message
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


def context_window(pipeline: Pipeline, model: str) -> int | None:
    """The largest context window (catalog facts) among the deployment's targets: the pipeline
    skips a target too small for the prompt, so an input that fits this one can be served.
    ``None`` when a target's window is unknown (it might hold anything)."""
    gateway = pipeline.gateway
    deployment = gateway.table.get(model)
    if deployment is None:
        return None
    largest = 0
    for target in deployment.targets:
        provider = gateway.providers.get(target.provider)
        info = provider and gateway.catalog.lookup(provider.settings.type, target.model)
        if not info or info.context_window is None:
            return None
        largest = max(largest, info.context_window)
    return largest or None


def fit_context(messages: list[Message], window: int | None, truncation: str) -> tuple[str, ...]:
    """Make ``messages`` fit ``window`` (the prompt estimate of ``estimate_prompt_tokens``).

    With ``truncation`` ``auto`` the oldest messages after the leading instructions (system and
    developer turns) are dropped, never the last one, with the tool results whose call went; the
    returned warning says how many. With ``disabled``, or when even the last message alone is
    too large, an overflow is the spec's 400 ``context_length_exceeded``.
    """
    if window is None:
        return ()
    limit = (window + 1) * CHARS_PER_TOKEN  # total // CHARS_PER_TOKEN <= window
    sizes = [len(m.text()) for m in messages]
    total = sum(sizes)
    if total < limit:
        return ()
    keep = 0
    while keep < len(messages) - 1 and messages[keep].role in ("system", "developer"):
        keep += 1
    dropped = 0
    if truncation == "auto":
        while total >= limit or (keep < len(messages) - 1 and messages[keep].role == "tool"):
            if keep >= len(messages) - 1:
                break
            total -= sizes.pop(keep)
            del messages[keep]
            dropped += 1
    if total >= limit:
        raise InvalidRequest(
            f"input: about {total // CHARS_PER_TOKEN} tokens exceed the model's context window "
            f"of {window} tokens; shorten it"
            + ("" if truncation == "auto" else ", or set truncation to 'auto'"),
            param="input",
            code="context_length_exceeded",
        )
    return (
        f"truncation: the oldest {dropped} message{'' if dropped == 1 else 's'} of the input "
        f"dropped to fit the context window of {window} tokens",
    )
