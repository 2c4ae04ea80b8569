"""The embedded llama.cpp runtime: local GGUF models served by a supervised worker process.

The gateway reaches the worker as an OpenAI-compatible upstream over loopback HTTP, so inference
never runs on the gateway's event loop. ``LocalRuntime`` (``supervisor.py``) is what ``serve``
uses; the worker itself (``worker.py``) imports llama-cpp-python, this package's root does not.
"""

from modelyard.local.paths import DEFAULT_MODEL_NAME, EmbeddedModelMissing, default_model_path
from modelyard.local.supervisor import LocalRuntime, LocalRuntimeSpec
from modelyard.local.worker_process import LocalRuntimeError

__all__ = [
    "DEFAULT_MODEL_NAME",
    "EmbeddedModelMissing",
    "LocalRuntime",
    "LocalRuntimeError",
    "LocalRuntimeSpec",
    "default_model_path",
]
