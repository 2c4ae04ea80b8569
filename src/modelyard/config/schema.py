"""The typed shape of ``modelyard.yaml``. Unknown keys are rejected everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from modelyard.config.secrets import Secret, resolve_secret

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class Timeouts(_Strict):
    """Seconds. ``first_token`` bounds the wait for headers and for each streamed chunk."""

    connect: float = Field(10.0, gt=0)
    first_token: float = Field(60.0, gt=0)
    total: float = Field(600.0, gt=0)


class ProviderConfig(_Strict):
    type: str
    base_url: str | None = None
    api_key: Secret | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeouts: Timeouts = Timeouts()
    # Adapter-specific settings (e.g. azure_openai's api_version); each adapter checks its own.
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


class TargetConfig(_Strict):
    provider: str
    model: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)


class DeploymentConfig(_Strict):
    targets: list[TargetConfig] = Field(min_length=1)
    description: str | None = None


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


class Settings(_Strict):
    server: ServerConfig = ServerConfig()
    local: LocalConfig = LocalConfig()
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    deployments: dict[str, DeploymentConfig] = Field(default_factory=dict)
