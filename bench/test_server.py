"""Server benchmarks: fan-out latency, connection setup, 1 MiB relay.

Each measures the target (the reference server unless ``--chat-server`` or
``--chat-server-cmd`` says otherwise) and the naive blocking-send baseline
(and for the 1 MiB relay the asyncio one) round by round in the same test
(bench/paired.py, fixture ``paired_servers``); the same-run ratios, medians
of the per-round ratios, are printed at the end (bench/conftest.py).

* ``test_fanout_latency[N]``: one 32-byte message from a sender until all N
  receivers (1, 10, 100) have it, on the target and on the naive baseline in
  the same test, round by round (bench/paired.py): each round times a block
  of messages on each, the order alternating, and the same-run ratio is the
  median of the per-round ratios of the median latencies.  The timed figure
  (pytest-benchmark's) is the target's block.  ``-k fanout`` selects these.
* ``test_connection_setup``: connect, register, say hello, until a registered
  observer has the hello; paired with the naive baseline, blocks of 10.
* ``test_relay_1mib``: one 1 MiB message (FRAME-5's floor) from sender to one
  receiver, intact; paired with the naive and the asyncio baselines, blocks of 3.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from contextlib import ExitStack

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


#: Messages per fan-out block (a few ms of work a block).
FANOUT_BLOCK = {1: 50, 10: 20, 100: 4}


def fanout_block(room: Room, messages: int) -> float:
    """``messages`` fan-out rounds; their median latency in seconds."""
    return median_of(messages, lambda: fanout_round(room, FANOUT_TEXT))


#: Paired rounds of the connection and 1 MiB benchmarks, and the operations in each block.
PAIRED_ROUNDS = 21
CONNECT_BLOCK = 10
RELAY_BLOCK = 3


def median_of(block: int, once: Callable[[], None]) -> float:
    """``block`` calls of ``once``; their median time in seconds."""
    times = []
    clock = time.perf_counter
    for _ in range(block):
        start = clock()
        once()
        times.append(clock() - start)
    return statistics.median(times)


def run_paired(benchmark, blocks: dict[str, Callable[[], float]], figure_name: str) -> None:
    """Measure the target's block (key "target") and every baseline's, round by round."""
    for block in blocks.values():  # warm-up: every connection has carried traffic
        block()
    paired = PairedRounds(blocks["target"], {k: v for k, v in blocks.items() if k != "target"},
                          figure_name=figure_name)
    benchmark.pedantic(paired.target, setup=paired.setup, teardown=paired.teardown,
                       rounds=PAIRED_ROUNDS)
    benchmark.extra_info.update(paired.extra_info())


@pytest.mark.benchmark(group="connect")
def test_connection_setup(benchmark, paired_servers: dict[str, BenchServer]) -> None:
    kinds = ("target", "naive")
    with ExitStack() as stack:
        observers = {k: stack.enter_context(ChatClient.connect(*paired_servers[k].address,
                                                               name="observer", timeout=30.0))
                     for k in kinds}
        describe(benchmark, paired_servers["target"], block_connections=CONNECT_BLOCK)

        def block(kind: str) -> Callable[[], float]:
            return lambda: median_of(CONNECT_BLOCK, lambda: connect_round(paired_servers[kind].address,
                                                                          observers[kind]))

        run_paired(benchmark, {k: block(k) for k in kinds}, "median connect-register-hello time (s)")


@pytest.mark.benchmark(group="relay-1mib")
def test_relay_1mib(benchmark, paired_servers: dict[str, BenchServer]) -> None:
    frame, _ = big_message_frame(MIB)
    with ExitStack() as stack:
        rooms = {k: stack.enter_context(open_room(s.address, 1)) for k, s in paired_servers.items()}
        describe(benchmark, paired_servers["target"], payload_bytes=MIB, block_relays=RELAY_BLOCK)

        def block(kind: str) -> Callable[[], float]:
            return lambda: median_of(RELAY_BLOCK, lambda: relay_big_round(rooms[kind], frame, MIB))

        run_paired(benchmark, {k: block(k) for k in rooms}, "median 1 MiB relay time (s)")


@pytest.mark.benchmark(group="fanout")
@pytest.mark.parametrize("receivers", FANOUT_RECEIVERS)
def test_fanout_latency(benchmark, paired_servers: dict[str, BenchServer], receivers: int) -> None:
    assert len(FANOUT_TEXT.encode()) == 32
    block = FANOUT_BLOCK[receivers]
    with ExitStack() as stack:
        rooms = {k: stack.enter_context(open_room(paired_servers[k].address, receivers))
                 for k in ("target", "naive")}
        describe(benchmark, paired_servers["target"], receivers=receivers, payload_bytes=32,
                 block_messages=block)
        run_paired(benchmark, {k: (lambda r=room: fanout_block(r, block)) for k, room in rooms.items()},
                   "median fan-out latency (s)")
        # Nothing extra arrived: the next round's message is the next thing each receiver reads.
        for room in rooms.values():
            fanout_round(room, "after")
