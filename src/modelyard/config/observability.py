"""The ``observability`` section of ``modelyard.yaml``: metrics, traces, log format.

Everything is off by default and costs nothing when off. These settings take effect at start-up
(a reload keeps the running ones).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from modelyard.config.secrets import Secret, resolve_secret


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class MetricsConfig(_Strict):
    """Prometheus ``GET /metrics``. Open to loopback clients; from elsewhere a scrape needs the
    ``token`` (``Authorization: Bearer ...``) or an operator key, unless ``open`` is true."""

    enabled: bool = False
    # A bearer token for scrapers (a literal, env::NAME or file::PATH).
    token: Secret | None = None
    # Serve /metrics to anyone who can reach the server (behind a trusted network only).
    open: bool = False

    @field_validator("token", mode="before")
    @classmethod
    def _resolve_token(cls, value: Any) -> Secret | None:
        if value is None or isinstance(value, Secret):
            return value
        if not isinstance(value, str) or len(value) < 16:
            raise ValueError("must be a token of at least 16 characters, env::NAME or file::PATH")
        return resolve_secret(value)


class TracingConfig(_Strict):
    """OpenTelemetry traces following the GenAI semantic conventions, exported by OTLP."""

    enabled: bool = False
    # otlp_grpc (default port 4317) or otlp_http (4318, /v1/traces); none: traces are made
    # (and propagated to upstreams) but not exported.
    exporter: Literal["otlp_grpc", "otlp_http", "none"] = "otlp_http"
    # The collector's address; unset: the exporter's default (or OTEL_EXPORTER_OTLP_ENDPOINT).
    endpoint: str | None = Field(None, max_length=2048)
    service_name: str = Field("modelyard", min_length=1, max_length=128)
    # The share of requests traced when the client sent no sampled traceparent.
    sample_ratio: float = Field(1.0, ge=0, le=1)
    # Record message content (prompts and answers) on the client spans, after redaction.
    capture_content: bool = False
    # Regular expressions whose matches are replaced by [redacted] in captured content (key-like
    # tokens always are).
    redact: list[str] = Field(default_factory=list, max_length=64)


class LogsConfig(_Strict):
    """``json``: one JSON object per line (request id, trace id, key id, project, deployment,
    provider, status, durations); ``text``: the classic lines."""

    format: Literal["text", "json"] = "text"


class ObservabilityConfig(_Strict):
    metrics: MetricsConfig = MetricsConfig()
    tracing: TracingConfig = TracingConfig()
    logs: LogsConfig = LogsConfig()
