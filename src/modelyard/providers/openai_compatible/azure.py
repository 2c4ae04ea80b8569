"""Azure OpenAI: the OpenAI wire format at deployment URLs with an ``api-version``.

The target's ``model`` is the Azure *deployment* name. Options: ``api_version`` (default the
latest GA inference version we know, 2024-10-21) and ``auth`` (``api-key``, the default, sends
the key in the ``api-key`` header; ``bearer`` sends it as a Microsoft Entra token).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar
from urllib.parse import quote

from modelyard.providers.base import ProviderSettings
from modelyard.providers.openai_compatible.adapter import OpenAICompatibleProvider
from modelyard.providers.transport import Transport

DEFAULT_API_VERSION = "2024-10-21"
_AUTH_MODES = ("api-key", "bearer")


class AzureOpenAIProvider(OpenAICompatibleProvider):
    OPTIONS: ClassVar[Mapping[str, str]] = {
        "api_version": f"the api-version query parameter (default {DEFAULT_API_VERSION})",
        "auth": "api-key (default) or bearer",
    }

    def __init__(self, settings: ProviderSettings, transport: Transport) -> None:
        self._auth_mode = str(settings.options.get("auth", "api-key"))
        self._api_version = str(settings.options.get("api_version", DEFAULT_API_VERSION))
        super().__init__(settings, transport)

    @classmethod
    def check_options(cls, options: Mapping[str, object]) -> list[tuple[str, str]]:
        problems = super().check_options(options)
        auth = options.get("auth", "api-key")
        if auth not in _AUTH_MODES:
            problems.append(("auth", f"must be one of {', '.join(_AUTH_MODES)}; got {auth!r}"))
        return problems

    def _auth_headers(self, api_key: str | None) -> dict[str, str]:
        if not api_key:
            return {}
        if self._auth_mode == "bearer":
            return {"authorization": f"Bearer {api_key}"}
        return {"api-key": api_key}

    def _url(self, operation: str, model: str) -> str:
        deployment = quote(model, safe="")
        return (
            f"{self.base_url}/openai/deployments/{deployment}/{operation}"
            f"?api-version={quote(self._api_version, safe='')}"
        )
