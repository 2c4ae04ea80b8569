"""Agents: tools the gateway runs (MCP clients, the outbound policy they connect under)."""
