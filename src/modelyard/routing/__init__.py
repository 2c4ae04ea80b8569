"""Deployments → ordered candidate targets; health, strategies and retry policy."""

from modelyard.routing.health import BreakerSettings, HealthBoard, TargetHealth
from modelyard.routing.router import PlanRequest, Router
from modelyard.routing.table import Deployment, RetryPolicy, RoutingTable, Shadow, Target

__all__ = [
    "BreakerSettings",
    "Deployment",
    "HealthBoard",
    "PlanRequest",
    "RetryPolicy",
    "Router",
    "RoutingTable",
    "Shadow",
    "Target",
    "TargetHealth",
]
