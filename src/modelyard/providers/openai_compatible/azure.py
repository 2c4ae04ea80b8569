"""Azure OpenAI: the OpenAI wire format at deployment URLs with an ``api-version``.

The target's ``model`` is the Azure *deployment* name. Options: ``api_version`` (default the
latest GA inference version we know, 2024-10-21) and ``auth`` (``api-key``, the default, sends
the key in the ``api-key`` header; ``bearer`` sends it as a Microsoft Entra token).
"""

from __future__ import annotations

from typing import ClassVar, Literal
from urllib.parse import quote

from pydantic import Field

from modelyard.providers.base import ProviderOptions, ProviderSettings
from modelyard.providers.openai_compatible.adapter import OpenAICompatibleProvider
from modelyard.providers.transport import Transport

DEFAULT_API_VERSION = "2024-10-21"


class AzureOptions(ProviderOptions):
    api_version: str = Field(
        DEFAULT_API_VERSION, min_length=1, description="the api-version query parameter"
    )
    auth: Literal["api-key", "bearer"] = Field(
        "api-key",
        description="api-key sends the key in the api-key header; bearer sends it as a "
        "Microsoft Entra token",
    )


class AzureOpenAIProvider(OpenAICompatibleProvider):
    Options: ClassVar[type[ProviderOptions]] = AzureOptions

    def __init__(self, settings: ProviderSettings, transport: Transport) -> None:
        options = AzureOptions.model_validate(settings.options)
        self._auth_mode = options.auth
        self._api_version = options.api_version
        super().__init__(settings, transport)

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
