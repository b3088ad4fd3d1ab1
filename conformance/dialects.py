"""Recognise the known variants of the protocol (PROTOCOL.md section 6), in plain words.

Once per run, before the first case, two probe clients join and one sends a
few messages.  What the other receives (and whether the sender gets its own
message back) is matched against the known dialects:

* single-frame relay: ``name> text`` (or ``name: text``) as one frame;
* echo: the message comes back to its sender;
* other header width: the stream parses with N-byte headers but not 10-byte ones.

The probe only observes; the cases judge.  Its words go at the top of the
report so a student learns "your server speaks a close variant" instead of
reading thirty unrelated-looking failures.
"""

from __future__ import annotations

import re
import socket
import time

from reference.protocol import HEADER_LENGTH, encode_frame

__all__ = ["OTHER_WIDTHS", "detect", "exchange", "parse_frames", "probe"]

SENDER, RECEIVER = "probe-sender", "probe-receiver"
TEXT = "dialect probe"
_SINGLE_FRAME = re.compile(rf"^\s*\[?{SENDER}\]?\s*[>:]\s*{TEXT}")
_WIDTHS = [w for w in range(2, 33) if w != HEADER_LENGTH]
#: The widths tried when 10-byte clients hear nothing (a changed HEADER_LENGTH constant).
OTHER_WIDTHS = (8, 16, 4, 5, 6, 12, 20)


def parse_frames(raw: bytes, width: int) -> list[bytes] | None:
    """Split ``raw`` into whole frames with ``width``-byte headers, or None if it does not fit."""
    frames: list[bytes] = []
    pos = 0
    while pos < len(raw):
        header = raw[pos:pos + width]
        digits = header.strip(b" ")
        if len(header) < width or not digits.isdigit():
            return None
        end = pos + width + int(digits)
        if end > len(raw):
            return frames if frames else None  # a frame still on its way
        frames.append(raw[pos + width:end])
        pos = end
    return frames


def detect(received: bytes, echoed: bytes) -> list[str]:
    """The dialects that ``received`` (at the other client) and ``echoed`` (at the sender) show."""
    found = []
    frames = parse_frames(received, HEADER_LENGTH)
    if frames is None:
        for other in _WIDTHS:
            frames = parse_frames(received, other)
            if frames and len(frames) >= 2 and any(TEXT.encode() in f for f in frames):
                found.append(f"other header width: the server's frames have {other}-byte headers, "
                             f"not 10-byte ones (breaks FRAME-2; a 10-byte client cannot read them)")
                break
    if frames:
        first = frames[0].decode("utf-8", "replace")
        if _SINGLE_FRAME.match(first):
            found.append(f"single-frame relay: the server forwards each message as one frame "
                         f"{first.strip()!r} instead of a username frame followed by a message "
                         f"frame (breaks RELAY-1)")
    if TEXT.encode() in echoed:
        found.append("echo: the server also sends each message back to its sender (breaks RELAY-2)")
    return found


def _drain(sock: socket.socket, into: bytearray) -> None:
    """Take whatever has arrived, without waiting."""
    try:
        while chunk := sock.recv(65536):
            into += chunk
    except OSError:  # BlockingIOError: nothing more yet; others: the server closed or reset
        pass


def _frame(payload: bytes, width: int) -> bytes:
    if width == HEADER_LENGTH:
        return encode_frame(payload)
    # Speaking another width on purpose, to recognise a server that does (never otherwise).
    return f"{len(payload):<{width}}".encode() + payload


def exchange(address: tuple[str, int], width: int, timeout: float) -> tuple[bytes, bytes]:
    """Join two probe clients speaking ``width``-byte headers; one sends until the other hears.

    Returns what the receiver and the sender received.
    """
    received, echoed = bytearray(), bytearray()
    try:
        receiver = socket.create_connection(address, timeout=timeout)
    except OSError:
        return b"", b""
    try:
        sender = socket.create_connection(address, timeout=timeout)
    except OSError:
        receiver.close()
        return b"", b""
    try:
        for sock in (receiver, sender):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # Non-blocking: a socket with a timeout waits for data before every recv.
            sock.setblocking(False)
        receiver.sendall(_frame(RECEIVER.encode(), width))
        sender.sendall(_frame(SENDER.encode(), width))
        deadline = time.monotonic() + timeout
        number = 0
        while time.monotonic() < deadline and not received:
            sender.sendall(_frame(f"{TEXT} {number}".encode(), width))
            number += 1
            time.sleep(0.05 * min(number, 4))
            _drain(receiver, received)
        time.sleep(0.1)  # let the rest of the first relay and any echo arrive
        _drain(receiver, received)
        _drain(sender, echoed)
    except OSError:
        pass
    finally:
        receiver.close()
        sender.close()
    return bytes(received), bytes(echoed)


def probe(address: tuple[str, int], timeout: float = 3.0) -> list[str]:
    """Recognise the server's dialect, if any, in plain words (see the module docstring)."""
    received, echoed = exchange(address, HEADER_LENGTH, timeout)
    if received:
        return detect(received, echoed)
    # Nothing came back to 10-byte clients: perhaps the server only speaks another width.
    for width in OTHER_WIDTHS:
        received, echoed = exchange(address, width, min(timeout, 0.5))
        if received:
            return detect(received, echoed)
    return []
