"""AWS Bedrock Runtime: chat via Converse and ConverseStream, Titan embeddings via InvokeModel."""

from modelyard.providers.bedrock.adapter import BedrockProvider

__all__ = ["BedrockProvider"]
