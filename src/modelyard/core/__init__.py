"""Canonical types shared by every layer: no I/O, no web framework, no vendor names."""
