"""Modelyard: every AI model behind one door."""

__version__ = "0.1.0"
