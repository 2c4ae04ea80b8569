"""Bedrock's provider options, apart from the adapter so that reading them imports no botocore."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from modelyard.providers.base import ProviderOptions


class BedrockOptions(ProviderOptions):
    region: str | None = Field(
        None,
        min_length=1,
        description="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, then us-east-1)",
    )
    structured_output: Literal["tool", "native"] = Field(
        "tool",
        description="how JSON answers are asked for: tool (any model) or native "
        "(outputConfig.textFormat, newer models only)",
    )
