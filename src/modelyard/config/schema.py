"""The typed shape of ``modelyard.yaml``. Unknown keys are rejected everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from modelyard.config.observability import ObservabilityConfig
from modelyard.config.secrets import Secret, resolve_secret

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class Timeouts(_Strict):
    """Seconds. ``first_token`` bounds the wait for headers and for each streamed chunk."""

    connect: float = Field(10.0, gt=0)
    first_token: float = Field(60.0, gt=0)
    total: float = Field(600.0, gt=0)


def _options_by_type(schema: dict[str, Any]) -> None:
    """Each built-in provider type's ``options``, from its adapter's typed model, as JSON Schema
    ``if type is ... then options is ...`` rules (types with the same options share one rule).

    The values are checked by that same model when the config is built, with errors named
    ``providers.<name>.options.<option>``; a plugin's type accepts what its own model says.
    """
    from modelyard.providers.registry import options_models  # the adapters name their options

    groups: dict[str, tuple[list[str], dict[str, Any]]] = {}
    for name, model in sorted(options_models().items()):
        groups.setdefault(model.__name__, ([], model.model_json_schema()))[0].append(name)
    schema["allOf"] = [
        {
            "if": {"properties": {"type": {"enum": names}}, "required": ["type"]},
            "then": {"properties": {"options": options}},
        }
        for names, options in groups.values()
    ]


class ProviderConfig(_Strict):
    model_config = ConfigDict(json_schema_extra=_options_by_type)

    type: str
    base_url: str | None = None
    api_key: Secret | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeouts: Timeouts = Timeouts()
    # Adapter-specific settings (e.g. azure_openai's api_version), checked by the adapter's
    # typed ``Options`` model when the config is built.
    options: dict[str, str | int | float | bool] = Field(default_factory=dict)

    @field_validator("api_key", mode="before")
    @classmethod
    def _resolve_key(cls, value: Any) -> Secret | None:
        if value is None or isinstance(value, Secret):
            return value
        if not isinstance(value, str):
            raise ValueError("must be a string: a key, env::NAME or file::PATH")
        return resolve_secret(value)

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://, got {value!r}")
        return value.rstrip("/") if value else value


class TargetTimeouts(_Strict):
    """Per-target overrides of the provider's timeouts (seconds); unset keeps the provider's."""

    connect: float | None = Field(None, gt=0)
    first_token: float | None = Field(None, gt=0)
    total: float | None = Field(None, gt=0)


class TargetConfig(_Strict):
    provider: str
    model: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    weight: float = Field(1.0, ge=0)
    timeouts: TargetTimeouts = TargetTimeouts()

    @field_validator("model")
    @classmethod
    def _header_safe(cls, value: str) -> str:
        # Every answer names the model that served it in x-modelyard-model: a header value
        # is latin-1 text without control characters, or the answer could not be sent.
        if any(c < " " or "\x7f" <= c <= "\x9f" or c > "\xff" for c in value):
            raise ValueError(
                f"{value!r}: a model id is sent back in a response header, so it must be "
                "text without control characters, in latin-1 (vendors' model ids are ASCII)"
            )
        return value


class RetryConfig(_Strict):
    """Retries of retryable failures (connection errors, 408, 409, 429, 5xx, 529, timeouts)."""

    attempts: int = Field(3, ge=1, le=10)
    backoff_ms: float = Field(200, ge=0)
    max_backoff_ms: float = Field(5000, ge=0)
    budget_s: float = Field(60, gt=0)


class ShadowConfig(_Strict):
    """Mirror ``percent`` of a deployment's requests to a candidate target in the background:
    the client gets the primary's answer; both answers are stored for ``modelyard eval shadow``.
    At most ``max_in_flight`` shadow calls run at once per process; beyond that a sample is
    skipped, never queued."""

    provider: str
    model: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    percent: float = Field(gt=0, le=100)
    max_in_flight: int = Field(8, ge=1, le=1024)


class DeploymentConfig(_Strict):
    targets: list[TargetConfig] = Field(min_length=1)
    description: str | None = None
    strategy: str = Field(
        "failover",
        description="how targets are ordered: failover (the listed order), weighted, latency, "
        "cost, or the name of a modelyard.strategies plugin",
    )
    # Requests carrying this header stay on one target (a conversation keeps its model).
    sticky_header: str | None = None
    retry: RetryConfig = RetryConfig()
    shadow: ShadowConfig | None = None

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, value: str) -> str:
        from modelyard.routing.router import check_strategy  # the registry of strategies

        check_strategy(value)
        return value


class BreakerConfig(_Strict):
    """A target's circuit opens after ``failures`` consecutive failures, or when at least
    ``min_requests`` calls in ``window_s`` failed at ``error_rate`` or more; it half-opens
    (one probe) after ``cooldown_s``."""

    failures: int = Field(5, ge=1)
    error_rate: float = Field(0.5, gt=0, le=1)
    min_requests: int = Field(20, ge=1)
    window_s: float = Field(30, gt=0)
    cooldown_s: float = Field(15, gt=0)


class RoutingConfig(_Strict):
    breaker: BreakerConfig = BreakerConfig()
    # Weight of the newest time-to-first-token in the latency moving average.
    latency_alpha: float = Field(0.3, gt=0, le=1)


class PriceConfig(_Strict):
    """Dollars per million tokens, overriding the catalog's (negotiated prices, local models).
    Unset optional prices fall back to ``input`` (cached input, cache writes) and ``output``
    (reasoning)."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(None, ge=0)
    cache_write: float | None = Field(None, ge=0)
    reasoning: float | None = Field(None, ge=0)


class LocalModelConfig(_Strict):
    path: Path
    context: int | None = Field(None, gt=0)

    @field_validator("path")
    @classmethod
    def _exists(cls, value: Path) -> Path:
        path = value.expanduser()
        if not path.is_file():
            raise ValueError(f"no GGUF file at {path}")
        return path


class LocalConfig(_Strict):
    """The embedded llama.cpp runtime. The bundled model is always served unless disabled."""

    enabled: bool = True
    threads: int | None = Field(None, gt=0)
    context: int | None = Field(None, gt=0)
    queue_size: int = Field(64, gt=0)
    models: dict[str, LocalModelConfig] = Field(default_factory=dict)


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8700, ge=0, le=65535)
    max_body_bytes: int = Field(20 * 1024 * 1024, gt=0)
    max_in_flight: int = Field(1024, gt=0)
    api_keys: list[Secret] = Field(default_factory=list)
    access_log: bool = True

    @field_validator("api_keys", mode="before")
    @classmethod
    def _resolve_keys(cls, value: Any) -> list[Secret]:
        if not isinstance(value, list):
            raise ValueError("must be a list of keys (a key, env::NAME or file::PATH each)")
        keys: list[Secret] = []
        for item in value:
            if not isinstance(item, str) or not item:
                raise ValueError("every key must be a non-empty string")
            keys.append(resolve_secret(item))
        return keys


# Added for deployment versions: where the store lives (MODELYARD_DATABASE_URL overrides it).
class StoreConfig(_Strict):
    """``url``: an SQLAlchemy async URL (``postgresql+asyncpg://...``), a literal or a secret
    reference (``env::NAME``, ``file::PATH``) since it may carry a password; unset: SQLite in
    the data directory."""

    url: Secret | None = None
    # One usage record per request (the ledger behind `modelyard usage` and budgets' audit).
    usage_ledger: bool = True

    @field_validator("url", mode="before")
    @classmethod
    def _resolve_url(cls, value: Any) -> Secret | None:
        if value is None or isinstance(value, Secret):
            return value
        if not isinstance(value, str) or not value:
            raise ValueError("must be a database URL, env::NAME or file::PATH")
        return resolve_secret(value)


class LimitsConfig(_Strict):
    """Where rate-limit and budget counters live: in memory (one node) or, with ``redis_url``
    (``redis://...``, a literal or a secret reference; ``MODELYARD_REDIS_URL`` overrides it), in
    Redis shared by every replica. ``fail_open``: when Redis cannot be reached, serve without
    enforcing limits (true) or refuse with 503 (false)."""

    redis_url: Secret | None = None
    fail_open: bool = True

    @field_validator("redis_url", mode="before")
    @classmethod
    def _resolve_url(cls, value: Any) -> Secret | None:
        if value is None or isinstance(value, Secret):
            return value
        if not isinstance(value, str) or not value:
            raise ValueError("must be a redis:// URL, env::NAME or file::PATH")
        return resolve_secret(value)


class Settings(_Strict):
    server: ServerConfig = ServerConfig()
    local: LocalConfig = LocalConfig()
    routing: RoutingConfig = RoutingConfig()
    store: StoreConfig = StoreConfig()  # added with deployment versions
    limits: LimitsConfig = LimitsConfig()
    observability: ObservabilityConfig = ObservabilityConfig()
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    deployments: dict[str, DeploymentConfig] = Field(default_factory=dict)
    # Price overrides by "provider/model" (negotiated prices, local models).
    prices: dict[str, PriceConfig] = Field(default_factory=dict)
