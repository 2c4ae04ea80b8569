"""Counting a request's input tokens (the Messages API's ``count_tokens``).

An upstream that can count exactly (an adapter with ``count_tokens``) is asked
when it is the deployment's first target: that is the target a call goes to when all is well.
Otherwise, or when that upstream fails for reasons of its own (a retryable error, or one only
the operator can fix, such as our key refused), the caller's estimate is used;
``Counted.exact`` says which, for the response header. The count
is not metered: the vendor's counting endpoint is free, and no model answers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from modelyard.core.chat import ChatRequest
from modelyard.core.errors import ModelyardError
from modelyard.providers.base import CallContext
from modelyard.services.gateway import Gateway
from modelyard.tenancy.keys import Principal

log = logging.getLogger("modelyard.counting")


@runtime_checkable
class CountsTokens(Protocol):
    async def count_tokens(self, request: ChatRequest, model: str, ctx: CallContext) -> int: ...


@dataclass(frozen=True, slots=True)
class Counted:
    tokens: int
    exact: bool


async def count_input_tokens(
    gateway: Gateway,
    principal: Principal,
    request: ChatRequest,
    request_id: str,
    estimate: Callable[[ChatRequest], int],
) -> Counted:
    """The input tokens of ``request`` on its deployment (403/404 as a call would get)."""
    principal.may_call(request.model)
    deployment = gateway.table.resolve(request.model)
    target = deployment.targets[0]
    provider = gateway.providers.get(target.provider)
    if isinstance(provider, CountsTokens):
        try:
            tokens = await provider.count_tokens(request, target.model, CallContext(request_id))
        except ModelyardError as err:
            if not err.retryable and err.same_target:
                raise  # the request itself is at fault: a call would fail the same way
            log.info("request %s: exact count failed (%s); estimating", request_id, err.code)
        else:
            return Counted(tokens, exact=True)
    return Counted(estimate(request), exact=False)
