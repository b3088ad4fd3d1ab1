"""Server benchmarks: fan-out latency, connection setup, 1 MiB relay.

Each runs against the target (the reference server unless ``--chat-server`` or
``--chat-server-cmd`` says otherwise) and against the naive blocking-send
baseline, in the same run (the ``server`` parameter, see conftest.py); the
same-run ratios are printed at the end (bench/conftest.py).

* ``test_fanout_latency[SERVER-N]``: one 32-byte message from a sender until
  all N receivers (1, 10, 100) have it.  ``-k fanout`` selects these.
* ``test_connection_setup[SERVER]``: connect, register, say hello, until a
  registered observer has the hello; ops = connections per second.
* ``test_relay_1mib[SERVER]``: one 1 MiB message (FRAME-5's floor) from sender
  to one receiver, intact; also against the asyncio baseline.
"""

from __future__ import annotations

import pytest

from bench.rooms import (
    BenchServer,
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


@pytest.mark.benchmark(group="fanout")
@pytest.mark.parametrize("receivers", FANOUT_RECEIVERS)
def test_fanout_latency(benchmark, server: BenchServer, receivers: int) -> None:
    assert len(FANOUT_TEXT.encode()) == 32
    with open_room(server.address, receivers) as room:
        describe(benchmark, server, receivers=receivers, payload_bytes=32)
        benchmark(fanout_round, room, FANOUT_TEXT)
        # Nothing extra arrived: the next round's message is the next thing each receiver reads.
        fanout_round(room, "after")


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
