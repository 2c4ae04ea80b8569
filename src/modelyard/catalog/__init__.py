"""Facts about models: vendor, context window, capabilities."""

from modelyard.catalog.models import Catalog, ModelInfo, local_model_info

__all__ = ["Catalog", "ModelInfo", "local_model_info"]
