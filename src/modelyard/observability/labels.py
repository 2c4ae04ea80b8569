"""The metrics' bounded label values and their environment variable, without the library.

Apart from ``metrics.py`` so that what every process names (the access log's route label, the
workers' metrics directory) imports neither prometheus-client nor anything that loads it.
"""

from __future__ import annotations

from typing import Final

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
NONE: Final = "-"  # a label with no value (no deployment resolved, no project)
OTHER: Final = "other"  # a route that is not one we serve
