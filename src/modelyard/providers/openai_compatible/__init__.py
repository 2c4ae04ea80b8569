"""Any upstream speaking the OpenAI Chat Completions API, with presets for known vendors."""
