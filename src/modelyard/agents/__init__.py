"""Agents: named, versioned definitions a Responses request invokes (``agent:<name>``), and
the tools the gateway runs for them (MCP clients, the outbound policy they connect under)."""
