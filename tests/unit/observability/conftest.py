from __future__ import annotations

from tests.unit.observability.harness import fake, gateway

__all__ = ["fake", "gateway"]
