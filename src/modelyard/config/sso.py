"""The ``sso:`` section: single sign-on with an OpenID Connect provider.

With it, the admin API accepts the provider's access tokens (JWTs, checked against its JWKS) as
well as keys, and ``/auth/login``, ``/auth/callback`` and ``/auth/logout`` sign people in with
the authorization code flow and PKCE. ``roles`` maps a claim's value (a group, usually) to a
role and projects; a person whose claims match no rule is refused unless ``default_role`` is
set. Changes take effect at the next start (not on reload).
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from modelyard.config.secrets import Secret, resolve_secret

PROJECT_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
Algorithm = Literal["RS256", "RS384", "RS512", "PS256", "PS384", "ES256", "ES384", "EdDSA"]
_ALGORITHMS: tuple[Algorithm, ...] = ("RS256", "ES256", "PS256", "EdDSA")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class RoleRule(_Strict):
    """When claim ``claim`` equals ``value`` (or, for a list claim such as ``groups``, contains
    it), the person has ``role`` in ``projects`` (an operator needs none)."""

    claim: str = Field("groups", min_length=1, max_length=128)
    value: str = Field(min_length=1, max_length=256)
    role: Literal["operator", "owner", "member"]
    projects: list[str] = Field(default_factory=list)

    @field_validator("projects")
    @classmethod
    def _project_ids(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.fullmatch(PROJECT_PATTERN, name):
                raise ValueError(f"{name!r} is not a project id ({PROJECT_PATTERN})")
        return value

    @model_validator(mode="after")
    def _projects_for_project_roles(self) -> RoleRule:
        if self.role != "operator" and not self.projects:
            raise ValueError(f"a rule giving role {self.role!r} must name its projects")
        return self


def _url(value: str, what: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValueError(f"{what} must be an http(s) URL, got {value!r}")
    return value


class SsoConfig(_Strict):
    """``issuer``: the provider's issuer URL (its discovery document is
    ``<issuer>/.well-known/openid-configuration``). ``client_id`` (and ``client_secret`` for a
    confidential client; PKCE is always used). ``audience``: what an access token's ``aud`` must
    contain (default: the client id). ``state_secret``: 32+ characters, shared by every replica,
    encrypting the short-lived sign-in cookie. ``redirect_url``: this gateway's
    ``/auth/callback`` as the provider knows it (default: built from the request)."""

    issuer: str
    # What the portal's sign-in page calls the provider: "Sign in with <display_name>".
    display_name: str = Field("single sign-on", min_length=1, max_length=64)
    client_id: str = Field(min_length=1, max_length=256)
    client_secret: Secret | None = None
    audience: str | None = Field(None, min_length=1, max_length=256)
    state_secret: Secret
    redirect_url: str | None = None
    post_logout_redirect_url: str | None = None
    scopes: list[str] = Field(default_factory=lambda: ["openid", "profile", "email"])
    roles: list[RoleRule] = Field(default_factory=list)
    default_role: Literal["owner", "member"] | None = None
    default_projects: list[str] = Field(default_factory=list)
    # Accepted signature algorithms (never "none" nor a shared-secret HS*).
    algorithms: list[Algorithm] = Field(default_factory=lambda: list(_ALGORITHMS), min_length=1)
    leeway_s: int = Field(30, ge=0, le=300)
    # A token signed with a key id we do not know makes us fetch the JWKS again (the provider
    # rotated its keys), at most once per this many seconds.
    jwks_refetch_s: float = Field(30.0, ge=0.0, le=3600.0)
    jwks_max_age_s: float = Field(3600.0, gt=0, le=86400.0)
    http_timeout_s: float = Field(10.0, gt=0, le=120.0)

    @field_validator("issuer", "redirect_url", "post_logout_redirect_url")
    @classmethod
    def _urls(cls, value: str | None) -> str | None:
        return None if value is None else _url(value, "this")

    @field_validator("client_secret", "state_secret", mode="before")
    @classmethod
    def _secret(cls, value: Any) -> Secret | None:
        if value is None or isinstance(value, Secret):
            return value
        if not isinstance(value, str) or not value:
            raise ValueError("must be a value, env::NAME or file::PATH")
        return resolve_secret(value)

    @field_validator("state_secret")
    @classmethod
    def _long_enough(cls, value: Secret) -> Secret:
        if len(value.reveal()) < 32:
            raise ValueError("must be at least 32 characters (shared by every replica)")
        return value

    @field_validator("scopes")
    @classmethod
    def _openid(cls, value: list[str]) -> list[str]:
        if "openid" not in value:
            raise ValueError("must include 'openid'")
        return value

    @model_validator(mode="after")
    def _default_projects(self) -> SsoConfig:
        if self.default_role is not None and not self.default_projects:
            raise ValueError("default_role needs default_projects")
        return self

    @property
    def expected_audience(self) -> str:
        return self.audience or self.client_id
