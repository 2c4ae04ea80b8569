"""Who is calling: keys and principals."""
