"""Anthropic's Messages API (Claude): request building, response and stream parsing, errors."""

from modelyard.providers.anthropic.adapter import AnthropicProvider

__all__ = ["AnthropicProvider"]
