"""The Gemini API (``generateContent`` and friends) served to google-genai and Gemini CLI."""
