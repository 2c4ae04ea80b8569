"""Google's Gemini API (``generativelanguage.googleapis.com``): chat, streaming and embeddings."""

from modelyard.providers.gemini.adapter import GeminiProvider

__all__ = ["GeminiProvider"]
