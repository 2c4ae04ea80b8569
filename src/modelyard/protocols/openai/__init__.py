"""protocols/openai."""
