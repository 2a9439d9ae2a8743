"""A stand-in TNC in its own process, so that a test can kill it with SIGKILL.

Usage: python fake_tnc.py PORT STREAM_FILE. Listens on 127.0.0.1:PORT (0: any free
port), prints the port it got, sends each client the bytes of STREAM_FILE and keeps the
connection open until the client leaves.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path


async def main(port: int, stream: bytes) -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(stream)
        await writer.drain()
        while await reader.read(4096):
            pass
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", port)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), Path(sys.argv[2]).read_bytes()))
