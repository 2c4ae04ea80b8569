"""A small MCP server to try the gateway's MCP tools with: ``add`` and ``fail``.

Run it with ``python examples/mcp_calc_server.py`` (port 18091, or ``--port N``); then a
``modelyard.yaml`` with

    mcp_servers:
      calc: {url: http://127.0.0.1:18091/mcp}

lets a request offer ``{"type": "mcp", "server_label": "calc", "require_approval": "never"}``
to any deployment (docs/agents.md, "MCP tools"). Needs only the ``mcp`` package.
"""

from __future__ import annotations

import argparse

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("calc", instructions="A calculator.")


@server.tool(description="Add two integers and return the sum.")
def add(a: int, b: int) -> int:
    return a + b


@server.tool(description="A tool that always fails.")
def fail(reason: str = "no reason") -> str:
    raise ToolError(f"the fail tool failed: {reason}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18091)
    parser.add_argument("--stdio", action="store_true", help="speak MCP on stdin/stdout instead")
    args = parser.parse_args()
    if args.stdio:  # e.g. mcp_servers: {calc: {command: python, args: [this file, --stdio]}}
        server.run("stdio")
        return
    print(f"MCP calculator on http://{args.host}:{args.port}/mcp (Ctrl-C to stop)")
    server.run("streamable-http", host=args.host, port=args.port, stateless_http=True)


if __name__ == "__main__":
    main()
