"""AWS Bedrock Runtime: chat via Converse and ConverseStream, Titan embeddings via InvokeModel.

The adapter (and botocore with it) is imported on first use of ``BedrockProvider``, so that
reading ``bedrock.options`` stays cheap for a gateway that never calls Bedrock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelyard.providers.bedrock.adapter import BedrockProvider

__all__ = ["BedrockProvider"]


def __getattr__(name: str) -> Any:
    if name == "BedrockProvider":
        from modelyard.providers.bedrock.adapter import BedrockProvider

        return BedrockProvider
    raise AttributeError(name)
