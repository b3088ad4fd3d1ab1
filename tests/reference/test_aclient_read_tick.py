"""``reference.aclient.ReadTick``: connections that read once a tick, against the embedded server."""

from __future__ import annotations

import asyncio
import time

import pytest

from reference import aclient
from reference.aclient import AsyncChatClient, ReadTick, connect_client
from reference.protocol import Relay
from reference.target import TargetSpec, open_target

TICK_S = 0.5  # long against the sends, so a loaded machine cannot split them across ticks


def test_a_tick_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        ReadTick(0)


def test_connections_read_a_ticks_relays_in_one_read_then_on_arrival_after_stop() -> None:
    got: list[tuple[Relay, int]] = []

    async def scenario() -> tuple[int, float, float]:
        with open_target(TargetSpec()) as target:
            ana = await connect_client(*target.address, name="ana")
            bea = await connect_client(*target.address, name="bea",
                                       on_relay=lambda relay, ns: got.append((relay, ns)))
            async with asyncio.timeout(20):  # every wait below is bounded
                return await exchange(ana, bea)

    async def exchange(ana: AsyncChatClient, bea: AsyncChatClient) -> tuple[int, float, float]:
        # Both are registered once bea has one of ana's: the server may read ana's first
        # message before bea's name, so ana repeats it until one comes.
        while not got:
            ana.send("hello")
            await asyncio.sleep(0.05)
        # Then a marker: one sender's relays come in order, so once bea has it, no repeat is
        # still on its way.
        ana.send("registered")
        while got[-1][0].text != "registered":
            await asyncio.sleep(0.001)
        got.clear()
        tick = ReadTick(TICK_S)
        reads_before = bea.reads
        tick.start([bea])
        started_ns = time.monotonic_ns()
        for n in range(5):
            ana.send(f"m{n}")
        while len(got) < 5:
            await asyncio.sleep(0.01)
        assert [relay.text for relay, _ in got] == [f"m{n}" for n in range(5)]
        reads_in_tick = bea.reads - reads_before
        waited_s = (got[0][1] - started_ns) / 1e9
        tick.stop()
        got.clear()
        sent_ns = time.monotonic_ns()
        ana.send("after the ticks")
        while not got:
            await asyncio.sleep(0.001)
        ana.close()
        bea.close()
        return reads_in_tick, waited_s, (got[0][1] - sent_ns) / 1e9

    reads_in_tick, waited_s, after_s = aclient.run(scenario())
    assert [relay for relay, _ in got] == [Relay("ana", "after the ticks")]
    assert reads_in_tick == 1         # the five relays came in one read, at the tick
    assert waited_s >= TICK_S * 0.9   # ...and were held until it
    assert after_s < TICK_S / 2       # after stop(), a relay is read as it arrives


def test_a_connection_the_server_closes_during_the_ticks_ends_with_the_reason() -> None:
    async def scenario() -> str:
        with open_target(TargetSpec()) as target:
            bea = await connect_client(*target.address, name="bea")
            tick = ReadTick(0.02)
            tick.start([bea])
            bea.send_raw(b"-1        ")  # FRAME-3: the server closes bea
            try:
                return await asyncio.wait_for(bea.closed, 10)
            finally:
                tick.stop()
                bea.close()

    assert aclient.run(scenario()) == "closed by the server"


def test_ticks_refuse_a_connection_without_a_plain_socket() -> None:
    async def scenario() -> None:
        client = AsyncChatClient()  # never connected: as over TLS, no socket to read
        with pytest.raises(ValueError, match="plain TCP"):
            ReadTick(0.01).start([client])

    aclient.run(scenario())
