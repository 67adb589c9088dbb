"""The Python MCP SDK (mcp 2.x) as a 2026-07-28 client of mcp-server.

Usage: python python_client.py MODE SERVER_COMMAND...
The CONTAINARIUM_* settings come from this process's environment. Lists the tools, calls
list_containers and get_container with a bad username, and prints what it saw as one JSON line.
"""

import json
import os
import sys

import anyio
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters


def text_of(result):
    return "\n".join(block.text for block in result.content if block.type == "text")


async def main(mode, command):
    params = StdioServerParameters(
        command=command[0],
        args=command[1:],
        env={k: v for k, v in os.environ.items() if k.startswith("CONTAINARIUM_") or k in ("PATH", "HOME")},
    )
    async with Client(params, mode=mode, cache=None) as client:
        tools = await client.list_tools()
        listed = await client.call_tool("list_containers", {})
        invalid = await client.call_tool("get_container", {"username": "Not A Name"})
        print(
            json.dumps(
                {
                    "protocol_version": client.protocol_version,
                    "tools": [tool.name for tool in tools.tools],
                    "ttl_ms": getattr(tools, "ttl_ms", None),
                    "cache_scope": getattr(tools, "cache_scope", None),
                    "list_text": text_of(listed),
                    "list_is_error": bool(listed.is_error),
                    "invalid_text": text_of(invalid),
                    "invalid_is_error": bool(invalid.is_error),
                }
            )
        )


anyio.run(main, sys.argv[1], sys.argv[2:])
