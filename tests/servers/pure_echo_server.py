"""An echo server: every byte a client sends comes back to that client only (breaks RELAY-1).

The first example of every socket tutorial, handed in as a chat server: it
relays nothing to anybody else.

    python tests/servers/pure_echo_server.py PORT
"""

import asyncio
import sys


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)  # the defect: back to the sender, to nobody else
        await writer.drain()
    writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(echo, "127.0.0.1", port)
    print(f"listening on 127.0.0.1:{port}", flush=True)
    await server.serve_forever()


asyncio.run(main(int(sys.argv[-1]) if len(sys.argv) > 1 else 1234))
