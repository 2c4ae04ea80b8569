"""Fake upstreams that speak each vendor's real wire format, for the integration tests."""

from .openai_upstream import FakeOpenAI, RecordedRequest, ScriptHandler

__all__ = ["FakeOpenAI", "RecordedRequest", "ScriptHandler"]
