"""protocols/anthropic: the Messages API the gateway serves."""
