"""Codec throughput (reference/protocol.py): encode and decode one frame.

Payloads of 32 B, 1 KiB and 64 KiB of UTF-8 text with multi-byte characters;
decode fed whole (one ``receive_data`` per frame, as after a big recv) and in
16-byte chunks (the header split across two feeds, and thousands of feeds for
a 64 KiB frame: the driver loop's worst realistic case).  pytest-benchmark's
``ops`` column is frames per second; each round also checks the result, so a
fast wrong codec cannot pass.  One more, ``test_generator_judges_one_read``, times
the load generator's whole receive path for one read (codec plus the worker's checks).
"""

from __future__ import annotations

import pytest

from loadtest.latency_worker import Receipts
from loadtest.scenario import Scenario
from reference.protocol import (
    HEADER_LENGTH,
    NEED_DATA,
    Connection,
    Message,
    Register,
    Role,
    encode_frame,
)
from reference.stamp import make_payload

SIZES = {"32B": 32, "1KiB": 1024, "64KiB": 64 * 1024}
#: Pure computation, no I/O: normalise by the CPU part of the calibration (bench/calibration.py).
CALIBRATION_WORKLOAD = "cpu"
CHUNK_BYTES = 16


def utf8_text(size: int) -> str:
    """Exactly ``size`` bytes of UTF-8 text, about one character in eight non-ASCII."""
    sample = "Grüße aus Köln, ça va? Ελλάδα ✓ "
    encoded = (sample * (size // len(sample) + 1)).encode()[:size]
    text = encoded.decode("utf-8", "ignore")
    return text + "x" * (size - len(text.encode()))


def registered_server_conn() -> Connection:
    conn = Connection(Role.SERVER)
    conn.receive_data(encode_frame(b"bench"))
    assert conn.next_event() == Register("bench")
    return conn


@pytest.mark.benchmark(group="codec-encode")
@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_codec_encode(benchmark, size: int) -> None:
    conn = Connection(Role.CLIENT)
    conn.send(Register("bench"))
    message = Message(utf8_text(size))
    benchmark.extra_info.update(payload_bytes=size)
    wire = benchmark(conn.send, message)
    assert wire == encode_frame(message.text.encode())
    assert len(wire) == HEADER_LENGTH + size


@pytest.mark.benchmark(group="codec-decode")
@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
@pytest.mark.parametrize("feed", ["whole", "chunked"])
def test_codec_decode(benchmark, size: int, feed: str) -> None:
    text = utf8_text(size)
    frame = encode_frame(text.encode())
    pieces = [frame] if feed == "whole" else [frame[i:i + CHUNK_BYTES]
                                              for i in range(0, len(frame), CHUNK_BYTES)]
    conn = registered_server_conn()

    def decode_one() -> object:
        # What a server's read loop does: feed, then take events until NEED_DATA.
        event: object = NEED_DATA
        for piece in pieces:
            conn.receive_data(piece)
            while (ready := conn.next_event()) is not NEED_DATA:
                event = ready
        return event

    benchmark.extra_info.update(payload_bytes=size, feeds_per_frame=len(pieces))
    event = benchmark(decode_one)
    assert event == Message(text)
    assert conn.buffered == 0


#: Relays in one read of the generator benchmark: about what a 10 ms read tick brings at 50 users.
RELAYS_PER_READ = 7


@pytest.mark.benchmark(group="generator-receive")
def test_generator_judges_one_read(benchmark) -> None:
    """chat-load's receive path for one read: the codec's flat payloads, then the worker's
    judge (label, pairing, order) and HDR timing of every relay.  ``ops`` is reads per second;
    each round's relays are new sequence numbers, and all must be counted as delivered."""
    senders, rounds, warmup = 49, 5_000, 100
    scenario = Scenario(host="127.0.0.1", port=1, clients=senders + 1, senders=senders, rate=600.0,
                        size=64, measured_count=10**6, warmup_count=0)
    receipts = Receipts(scenario, [senders])  # the receiver is the last client; 0..48 send
    on_frames = receipts.callback(senders)
    conn = Connection(Role.CLIENT)
    conn.send(Register(f"c{senders}"))
    def wire_for(seq: int) -> bytes:
        out = []
        for k in range(RELAYS_PER_READ):
            sender = (seq * RELAYS_PER_READ + k) % senders
            n = (seq * RELAYS_PER_READ + k) // senders
            out.append(encode_frame(f"c{sender}".encode())
                       + encode_frame(make_payload(sender, n, 0, 64).encode()))
        return b"".join(out)

    reads = iter([wire_for(seq) for seq in range(rounds + warmup)])

    def one_read() -> None:
        on_frames(conn.receive_relay_frames(next(reads)), 1_000_000)

    benchmark.extra_info.update(relays_per_read=RELAYS_PER_READ)
    benchmark.pedantic(one_read, rounds=rounds, iterations=1, warmup_rounds=warmup)
    judged = rounds + warmup - sum(1 for _ in reads)  # fewer under --benchmark-disable
    relays = judged * RELAYS_PER_READ
    assert receipts.unique == relays and receipts.measured_unique == relays
    assert receipts.counts() == {kind: 0 for kind in receipts.counts()} and receipts.unexpected == 0
