"""Guardrails: policies of guards that check, redact or block what goes in and out of a model.

This package knows text, not HTTP or the pipeline: ``services/guards.py`` runs its policies as
pipeline stages (pre-call for the input, stream stages for the output).
"""
