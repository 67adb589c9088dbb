"""The Python MCP SDK (mcp 2.x) as a 2026-07-28 client of mcp-server.

Usage: python python_client.py MODE SERVER_COMMAND...
       python python_client.py MODE http://.../mcp   (mcp-server http; the bearer token is
                                                     CONTAINARIUM_JWT_TOKEN of this process)
The CONTAINARIUM_* settings come from this process's environment. Lists the tools, calls
list_containers and get_container with a bad username, and prints what it saw as one JSON line.
"""

import json
import os
import sys

import anyio
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client


def text_of(result):
    return "\n".join(block.text for block in result.content if block.type == "text")


def server_of(command):
    if command[0].startswith("http"):
        headers = {"Authorization": f"Bearer {os.environ['CONTAINARIUM_JWT_TOKEN']}"}
        return streamable_http_client(command[0], http_client=create_mcp_http_client(headers=headers))
    return StdioServerParameters(
        command=command[0],
        args=command[1:],
        env={k: v for k, v in os.environ.items() if k.startswith("CONTAINARIUM_") or k in ("PATH", "HOME")},
    )


async def main(mode, command):
    async with Client(server_of(command), mode=mode, cache=None) as client:
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
