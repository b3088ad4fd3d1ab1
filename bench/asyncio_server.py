"""BENCHMARK BASELINE ONLY -- a plain asyncio chat server (streams, one task per client).

The second yardstick of the benchmarks, next to bench/naive_server.py: what
a competent programmer writes with the standard library's asyncio today.
Each connection is a task that reads a frame with ``readexactly`` (header,
then payload), checks its UTF-8 as PROTOCOL.md requires (FRAME-4), and hands
the relay to every other registered client's ``StreamWriter.write``, which
never blocks: the transport buffers what the socket does not take, and the
sender's task waits in ``drain()`` only when its *own* buffer is over the
high-water mark.  There is no per-client backlog limit (ROBUST-3), so do not
use it for anything but measurement.

Framing comes from the shared codec helpers (reference.protocol), and Nagle
is off as in the other servers.  Run as ``python bench/asyncio_server.py
--port 0``; the first line on stdout is ``asyncio chat-server listening on
HOST:PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import sys
from collections.abc import Sequence

from reference.protocol import (
    DEFAULT_HOST,
    DEFAULT_MAX_PAYLOAD,
    HEADER_LENGTH,
    RemoteProtocolError,
    encode_frame,
    encode_header,
    parse_header,
)


class Room:
    """The registered clients: writer -> its encoded username frame."""

    def __init__(self, max_payload: int) -> None:
        self.max_payload = max_payload
        self.members: dict[asyncio.StreamWriter, bytes] = {}

    async def read_frame(self, reader: asyncio.StreamReader) -> bytes:
        length = parse_header(await reader.readexactly(HEADER_LENGTH))
        if length > self.max_payload:
            raise RemoteProtocolError(f"declared length {length} is over the limit", "FRAME-6")
        payload = await reader.readexactly(length)
        payload.decode("utf-8")  # FRAME-4: refuse invalid UTF-8 before relaying it
        return payload

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            name = await self.read_frame(reader)
            if not name:
                return
            name_frame = encode_frame(name)
            self.members[writer] = name_frame
            while True:
                payload = await self.read_frame(reader)
                data = b"".join((name_frame, encode_header(len(payload)), payload))
                for other in self.members:
                    if other is not writer:
                        other.write(data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, RemoteProtocolError, UnicodeDecodeError):
            pass
        finally:
            self.members.pop(writer, None)
            writer.close()


async def run(host: str, port: int, max_payload: int) -> None:
    room = Room(max_payload)
    server = await asyncio.start_server(room.serve, host, port, backlog=4096)
    bound = server.sockets[0].getsockname()
    print(f"asyncio chat-server listening on {bound[0]}:{bound[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="BENCHMARK BASELINE: plain asyncio chat server")
    parser.add_argument("--port", type=int, default=0, help="port, 0 = any free one (default)")
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default %(default)s)")
    parser.add_argument("--max-payload", type=int, default=DEFAULT_MAX_PAYLOAD)
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"port {args.port} is not in 0..65535")
    # SIGTERM (how reference.target stops servers) exits via KeyboardInterrupt, as in
    # bench/naive_server.py; loop.add_signal_handler would not exist on Windows.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        asyncio.run(run(args.host, args.port, args.max_payload))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
