"""Metrics (Prometheus), traces (OpenTelemetry, GenAI conventions) and structured logs.

Imports only ``core``: the pipeline's glue (``services/observed.py``) turns a call into the
plain values recorded here, and the server serves ``/metrics``.
"""
