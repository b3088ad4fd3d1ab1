"""Server benchmarks: fan-out latency, connection setup, 1 MiB relay.

Each runs against the target (the reference server unless ``--chat-server`` or
``--chat-server-cmd`` says otherwise) and against the naive blocking-send
baseline, in the same run (the ``server`` parameter, see conftest.py); the
same-run ratios are printed at the end (bench/conftest.py).

* ``test_fanout_latency[N]``: one 32-byte message from a sender until all N
  receivers (1, 10, 100) have it, on the target and on the naive baseline in
  the same test, round by round (bench/paired.py): each round times a block
  of messages on each, the order alternating, and the same-run ratio is the
  median of the per-round ratios of the median latencies.  The timed figure
  (pytest-benchmark's) is the target's block.  ``-k fanout`` selects these.
* ``test_connection_setup[SERVER]``: connect, register, say hello, until a
  registered observer has the hello; ops = connections per second.
* ``test_relay_1mib[SERVER]``: one 1 MiB message (FRAME-5's floor) from sender
  to one receiver, intact; also against the asyncio baseline.
"""

from __future__ import annotations

import statistics
import time

import pytest

from bench.paired import PairedRounds
from bench.rooms import (
    BenchServer,
    Room,
    big_message_frame,
    connect_round,
    fanout_round,
    open_room,
    relay_big_round,
)
from reference.client import ChatClient

FANOUT_RECEIVERS = [1, 10, 100]
FANOUT_TEXT = "fan-out benchmark message 32 B!!"
MIB = 1024 * 1024


def describe(benchmark, server: BenchServer, **extra: object) -> None:
    benchmark.extra_info.update(server=server.label, **extra)


#: Paired rounds per fan-out benchmark, and messages per block (about 2-5 ms of work a block).
FANOUT_ROUNDS = 25
FANOUT_BLOCK = {1: 50, 10: 20, 100: 4}


def fanout_block(room: Room, messages: int) -> float:
    """``messages`` fan-out rounds; their median latency in seconds."""
    times = []
    clock = time.perf_counter
    for _ in range(messages):
        start = clock()
        fanout_round(room, FANOUT_TEXT)
        times.append(clock() - start)
    return statistics.median(times)


@pytest.mark.benchmark(group="fanout")
@pytest.mark.parametrize("receivers", FANOUT_RECEIVERS)
def test_fanout_latency(benchmark, paired_servers: dict[str, BenchServer], receivers: int) -> None:
    assert len(FANOUT_TEXT.encode()) == 32
    target, naive = paired_servers["target"], paired_servers["naive"]
    block = FANOUT_BLOCK[receivers]
    with open_room(target.address, receivers) as room, open_room(naive.address, receivers) as base:
        describe(benchmark, target, receivers=receivers, payload_bytes=32, block_messages=block)
        for r in (room, base):  # warm-up: every connection has carried traffic
            fanout_block(r, block)
        paired = PairedRounds(lambda: fanout_block(room, block), {"naive": lambda: fanout_block(base, block)},
                              figure_name="median fan-out latency (s)")
        benchmark.pedantic(paired.target, setup=paired.setup, teardown=paired.teardown,
                           rounds=FANOUT_ROUNDS)
        benchmark.extra_info.update(paired.extra_info())
        # Nothing extra arrived: the next round's message is the next thing each receiver reads.
        for r in (room, base):
            fanout_round(r, "after")


@pytest.mark.benchmark(group="connect")
def test_connection_setup(benchmark, server: BenchServer) -> None:
    with ChatClient.connect(*server.address, name="observer", timeout=30.0) as observer:
        describe(benchmark, server)
        benchmark(connect_round, server.address, observer)


@pytest.mark.benchmark(group="relay-1mib")
@pytest.mark.bench_baselines("naive", "asyncio")
def test_relay_1mib(benchmark, server: BenchServer) -> None:
    frame, _ = big_message_frame(MIB)
    with open_room(server.address, 1) as room:
        describe(benchmark, server, payload_bytes=MIB)
        benchmark(relay_big_round, room, frame, MIB)
