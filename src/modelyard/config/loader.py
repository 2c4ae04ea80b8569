"""Load ``modelyard.yaml``: parse, validate against the schema, check cross-references."""

from __future__ import annotations

import os
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from modelyard.config.errors import ConfigError, ConfigIssue, format_path
from modelyard.config.schema import NAME_PATTERN, Settings

CONFIG_ENV = "MODELYARD_CONFIG"
DATA_DIR_ENV = "MODELYARD_DATA_DIR"
_NAME_RE = re.compile(NAME_PATTERN)


def config_path_from_env(explicit: str | Path | None) -> Path | None:
    """The config file chosen by flag, else by ``MODELYARD_CONFIG``, else none."""
    if explicit:
        return Path(explicit)
    from_env = os.environ.get(CONFIG_ENV)
    return Path(from_env) if from_env else None


def load_settings(path: Path | None) -> Settings:
    """Read and validate the config file; with no path, the defaults (embedded model only)."""
    if path is None:
        return Settings()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigIssue("", f"cannot read {path}: {exc.strerror}")]) from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigIssue("", f"not valid YAML: {exc}")], str(path)) from exc
    return settings_from_data({} if raw is None else raw, source=str(path))


def settings_from_data(raw: Any, source: str | None = None) -> Settings:
    if not isinstance(raw, dict):
        raise ConfigError([ConfigIssue("", "the top level must be a mapping")], source)
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_issues_from(exc), source) from exc
    issues = check_references(settings)
    if issues:
        raise ConfigError(issues, source)
    return settings


def check_references(settings: Settings) -> list[ConfigIssue]:
    """Cross-field rules the schema cannot express."""
    issues: list[ConfigIssue] = []
    for section, names in (
        ("providers", settings.providers),
        ("deployments", settings.deployments),
        ("local.models", settings.local.models),  # served as deployments, named in headers
    ):
        for name in names:
            if not _NAME_RE.match(name):
                issues.append(
                    ConfigIssue(f"{section}.{name}", "names use letters, digits, . _ : / -")
                )
    known = sorted(settings.providers)
    if settings.local.enabled:
        if "local" in settings.providers:
            issues.append(
                ConfigIssue("providers.local", "the name 'local' is the embedded runtime")
            )
        known.append("local")
    for dep_name, dep in settings.deployments.items():
        used = [(f"targets[{i}]", t.provider) for i, t in enumerate(dep.targets)]
        if dep.shadow is not None:
            used.append(("shadow", dep.shadow.provider))
        for where, provider in used:
            if provider not in known:
                issues.append(
                    ConfigIssue(
                        f"deployments.{dep_name}.{where}.provider",
                        f"unknown provider {provider!r}; known: {', '.join(known) or 'none'}",
                    )
                )
    return issues


def _issues_from(exc: ValidationError) -> list[ConfigIssue]:
    issues = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        if err["type"] == "extra_forbidden":
            accepted = _accepted_keys(loc[:-1])
            message = f"unknown key {loc[-1]!r}; accepted: {', '.join(accepted)}"
        else:
            message = err["msg"].removeprefix("Value error, ")
        issues.append(ConfigIssue(format_path(loc), message))
    return issues


def _accepted_keys(parent: tuple[int | str, ...]) -> list[str]:
    """The field names of the model found at ``parent`` in the schema."""
    current: Any = Settings
    for part in parent:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            current = field.annotation if field else None
        else:
            current = _element_type(current)
    current = _unwrap_optional(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _element_type(annotation: Any) -> Any:
    """``dict[str, X]`` and ``list[X]`` → ``X``."""
    args = typing.get_args(_unwrap_optional(annotation))
    return args[-1] if args else None


def _unwrap_optional(annotation: Any) -> Any:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        non_none = [a for a in typing.get_args(annotation) if a is not type(None)]
        return non_none[0] if len(non_none) == 1 else annotation
    return annotation


def data_dir() -> Path:
    """``MODELYARD_DATA_DIR``, else the per-user data location (XDG on Unix)."""
    explicit = os.environ.get(DATA_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "modelyard"
