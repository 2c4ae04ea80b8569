"""Agents: named, versioned definitions a Responses request invokes (``agent:<name>``)."""
