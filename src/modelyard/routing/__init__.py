"""Deployments → ordered candidate targets."""

from modelyard.routing.table import Deployment, RoutingTable, Target

__all__ = ["Deployment", "RoutingTable", "Target"]
