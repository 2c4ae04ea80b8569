"""The typed shape of ``modelyard.yaml``. Unknown keys are rejected everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from modelyard.config.agents import AgentConfig
from modelyard.config.guardrails import GuardrailsConfig
from modelyard.config.mcp import McpConfig, McpServerConfig
from modelyard.config.observability import ObservabilityConfig
from modelyard.config.portal import PortalConfig
from modelyard.config.secrets import Secret, resolve_secret
from modelyard.config.sso import SsoConfig

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
        if value is not None and "@" in urlsplit(value).netloc:
            # Not echoed: the URL holds a password. aiohttp refuses credentials in a URL next
            # to an Authorization header, so every call would fail.
            raise ValueError(
                "must not carry credentials (user:password@host); put the key in api_key, "
                "or an authorization header in headers"
            )
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


class LearnedRouterConfig(_Strict):
    """The trained router of a deployment with ``strategy: learned`` (``modelyard router
    train``). The score is the probability that the strong target is needed; it goes first at
    or above ``threshold``, else the other targets do (failover still applies). Without a
    threshold, ``strong_share`` (a share of strong calls) or ``mode`` sets it: ``quality``,
    ``balanced`` or ``cost`` (shares 0.7, 0.45, 0.2 on the router's training data). A config
    reload re-reads the artifact. The router is a file (``artifact``) or one stored by
    ``modelyard router train --name`` (``name``, and ``version`` to pin one: else the newest),
    read from the store at start-up and on every reload."""

    artifact: Path | None = Field(
        None, description="the router artifact file (modelyard router train --out)"
    )
    name: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        description="a router in the store (modelyard router train --name); instead of artifact",
    )
    version: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="the stored router's version (modelyard router list); default the newest",
    )
    strong: str = Field(
        min_length=1, description="the strong target, as provider/model (one of the targets)"
    )
    mode: Literal["quality", "balanced", "cost"] = "balanced"
    threshold: float | None = Field(None, ge=0, le=1)
    strong_share: float | None = Field(None, ge=0, le=1)

    @model_validator(mode="after")
    def _one_source(self) -> LearnedRouterConfig:
        if (self.artifact is None) == (self.name is None):
            raise ValueError("name one router: artifact (a file) or name (in the store)")
        if self.version is not None and self.name is None:
            raise ValueError("version goes with name (a stored router)")
        return self


class SemanticRuleConfig(_Strict):
    """One rule of a deployment with ``strategy: semantic``: its target goes first when any of
    its conditions matches the request's user turns (rules are tried in order)."""

    target: str = Field(min_length=1, description="provider/model, one of the targets")
    keywords: list[str] = Field(default_factory=list, max_length=1000)
    regex: str | None = Field(None, max_length=1000, description="a Python regular expression")
    json_schema: bool = Field(False, description="match requests that ask for a JSON schema")
    examples: list[str] = Field(
        default_factory=list, max_length=1000, description="example prompts to be similar to"
    )
    min_similarity: float = Field(
        0.5, gt=0, le=1, description="cosine of hashed word n-grams, to the closest example"
    )

    @model_validator(mode="after")
    def _some_condition(self) -> SemanticRuleConfig:
        if not (self.keywords or self.regex or self.json_schema or self.examples):
            raise ValueError("a rule needs keywords, regex, json_schema or examples")
        if self.regex is not None:
            import re

            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"regex does not compile: {exc}") from exc
        return self


class DeploymentConfig(_Strict):
    targets: list[TargetConfig] = Field(min_length=1)
    description: str | None = None
    strategy: str = Field(
        "failover",
        description="how targets are ordered: failover (the listed order), weighted, latency, "
        "cost, learned (with router:), semantic (with rules:), or the name of a "
        "modelyard.strategies plugin",
    )
    # Requests carrying this header stay on one target (a conversation keeps its model).
    sticky_header: str | None = None
    retry: RetryConfig = RetryConfig()
    shadow: ShadowConfig | None = None
    hosted_tools: Literal["omit", "refuse"] = Field(
        "omit",
        description="Responses API requests offering hosted tools this gateway cannot run "
        "(web_search, file_search, code_interpreter, computer_use, image_generation, mcp): "
        "omit leaves them out of what the model is offered and says so (header "
        "x-modelyard-hosted-tools-omitted and a warning in the response); refuse answers 400",
    )
    router: LearnedRouterConfig | None = Field(
        None, description="the trained router, for strategy: learned"
    )
    rules: list[SemanticRuleConfig] | None = Field(
        None, max_length=100, description="the rules, in order, for strategy: semantic"
    )

    @model_validator(mode="after")
    def _router_with_learned(self) -> DeploymentConfig:
        if (self.strategy == "learned") != (self.router is not None):
            raise ValueError("strategy: learned and router: go together (one needs the other)")
        if (self.strategy == "semantic") != (self.rules is not None):
            raise ValueError("strategy: semantic and rules: go together (one needs the other)")
        keys = [f"{t.provider}/{t.model}" for t in self.targets]
        if self.router is not None and self.router.strong not in keys:
            raise ValueError(f"router.strong must be one of the targets: {', '.join(keys)}")
        for i, rule in enumerate(self.rules or ()):
            if rule.target not in keys:
                raise ValueError(f"rules[{i}].target must be one of the targets: {', '.join(keys)}")
        return self

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
    (reasoning). ``cache_write`` prices five-minute cache writes, ``cache_write_1h`` one-hour
    ones (a cache breakpoint's ``ttl: "1h"``); unset, a one-hour write costs the vendor's
    documented multiple of ``input`` where the catalog knows one (Claude's: 2x), else
    ``cache_write``."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(None, ge=0)
    cache_write: float | None = Field(None, ge=0)
    reasoning: float | None = Field(None, ge=0)
    cache_write_1h: float | None = Field(None, ge=0)


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
    # On SIGTERM: the listening socket closes at once (readiness fails, no new requests), the
    # requests and streams under way get this long to finish, then the ledger is written and
    # the process exits 0. Restart only.
    drain_timeout_s: int = Field(30, gt=0, le=3600)

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
    # How often each replica re-reads keys and deployment versions from the store: the safety
    # net under the change notifications (PostgreSQL), the only path on SQLite. Restart only.
    resync_interval_s: float = Field(0.5, gt=0, le=3600)
    # The ledger's write-ahead journal (docs/scale-out.md): each request's start and finished
    # row appended to a local file, so that after a kill (SIGKILL, OOM) the next start writes
    # the rows that were still queued and records what was in flight as `interrupted`. Off:
    # such rows are lost. Restart only.
    journal: bool = True
    # Where the journal lives: a local directory that survives a restart of the process
    # (Kubernetes: an emptyDir). Unset: `journal` in the data directory. Each database's
    # journal is kept in a subdirectory of its own.
    journal_dir: Path | None = None

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
    guardrails: GuardrailsConfig = GuardrailsConfig()  # added with guardrails (issue 22)
    # Named agents (issue 19): invoked by ``model: "agent:<name>"`` on /v1/responses.
    agents: dict[str, AgentConfig] = Field(
        default_factory=dict,
        description="named agents: model 'agent:<name>' on /v1/responses (docs/agents.md)",
    )
    # Tools the gateway runs (issue 19): MCP servers by label, and the outbound policy.
    mcp_servers: dict[str, McpServerConfig] = Field(default_factory=dict)
    mcp: McpConfig = McpConfig()
    sso: SsoConfig | None = None  # single sign-on (issue 24); None: keys only
    portal: PortalConfig = PortalConfig()  # the web console's sessions (docs/portal.md)
