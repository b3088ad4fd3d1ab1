"""Relaying to a client whose socket is full (PROTOCOL.md RELAY-4): nothing is lost or cut.

A server's ``send()`` to a client that is slow to read takes only part of the
bytes; what is left must be kept and sent, in order, once the client reads
again.  The case makes that happen on purpose -- a tiny receive window, a
reader that starts late, more bytes than a kernel's send buffer holds -- and
checks every byte.  (Found by the mutation run, tests/mutation/: a server
that skips a byte when it resumes a partial send passed every other case.)
"""

from __future__ import annotations

from conformance.peer import Room
from conformance.requirements import case
from reference.protocol import encode_frame

#: 6 MiB in all: more than a Linux kernel's send buffer and the tiny window together, so
#: the server must hold some for the late reader and resume partial sends; well below the
#: reference's 16 MiB backlog bound (ROBUST-4).
MESSAGES = 6
SIZE = 1024 * 1024


@case("relay.late-reader", "RELAY-4")
def test_late_reader_gets_everything(chat_room: Room) -> None:
    """RELAY-4: a client that reads late still receives every message, whole and in order."""
    late = chat_room.join("late", rcvbuf=4096)  # its window fills at once: the server must queue
    ana, bea = chat_room.join_all("ana", "bea")
    texts = [f"for the late reader {number} ".ljust(SIZE, "abcdefgh"[number]) for number in range(MESSAGES)]
    for text in texts:
        ana.send_raw(encode_frame(text.encode()), "a 1 MiB message")
    for text in texts:  # bea reads as it comes: by now the server has tried to write all to late
        bea.expect_relay("ana", text)
    for text in texts:
        late.expect_relay("ana", text)
