"""Crowd benchmarks: saturation throughput, memory per idle client (drivers in bench/crowd.py).

* ``test_saturation[SERVER]``: 100 registered clients chat as fast as the
  server lets them: each round, every client sends one 32-byte message and
  the round ends when all 9,900 relays have arrived.  The figure is the
  server's CPU time per delivery (``extra_info["figure"]``; shown as
  ``deliveries_per_cpu_s``), compared in the same run with the naive and the
  asyncio baselines.  CPU time, not wall time: the clients share the machine
  and would otherwise set the pace.  Needs a server this run started (its pid).
* ``test_memory_per_idle_client``: the target's resident memory grown per
  registered, silent client, with 10,000 of them (``bytes_per_idle_client``),
  in a target process of its own; the timed part is opening and registering
  them all.
"""

from __future__ import annotations

import resource

import pytest

from bench.crowd import idle_crowd, open_crowd, server_cpu_seconds
from bench.rooms import BenchServer
from reference.target import TargetSpec, open_target

SATURATION_CLIENTS = 100
IDLE_CLIENTS = 10_000


@pytest.mark.benchmark(group="saturation")
@pytest.mark.bench_baselines("naive", "asyncio")
def test_saturation(benchmark, server: BenchServer) -> None:
    cpu_before = server_cpu_seconds(server.pid) if server.pid is not None else None
    if server.pid is None or cpu_before is None:
        pytest.skip("server CPU time needs a server process this run started, and Linux /proc")
    with open_crowd(server.address, SATURATION_CLIENTS) as crowd:
        crowd.round()  # warm-up: every connection has carried traffic once
        crowd.deliveries = 0
        cpu_before = server_cpu_seconds(server.pid)
        benchmark(crowd.round)
        cpu_after = server_cpu_seconds(server.pid)
    assert cpu_before is not None and cpu_after is not None
    cpu = cpu_after - cpu_before
    assert crowd.deliveries > 0 and cpu > 0
    benchmark.extra_info.update(
        server=server.label, clients=SATURATION_CLIENTS, payload_bytes=32,
        deliveries=crowd.deliveries, server_cpu_s=round(cpu, 6),
        deliveries_per_cpu_s=round(crowd.deliveries / cpu),
        figure=cpu / crowd.deliveries, figure_name="server_cpu_s_per_delivery")


def _raise_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need <= hard or (soft < need and hard == resource.RLIM_INFINITY):
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    elif soft < need:
        pytest.skip(f"needs {need} open files; this process may open {hard}")


@pytest.mark.benchmark(group="memory")
def test_memory_per_idle_client(benchmark, chat_target_spec: TargetSpec) -> None:
    _raise_fd_limit(IDLE_CLIENTS + 256)
    # A server of its own: memory freed by earlier benchmarks' large relays
    # would otherwise be reused by these clients and hide what they cost.
    with open_target(chat_target_spec) as target:
        before = target.rss_bytes()
        if before is None:
            pytest.skip("server memory needs a server process this run started (Linux /proc)")
        grown: list[int] = []

        def join_all() -> None:
            with idle_crowd(target.address, IDLE_CLIENTS):
                after = target.rss_bytes()
                assert after is not None, target.describe_exit()
                grown.append(after - before)

        benchmark.pedantic(join_all, rounds=1, iterations=1)
    benchmark.extra_info.update(server=target.label, idle_clients=IDLE_CLIENTS,
                                rss_before_bytes=before,
                                bytes_per_idle_client=round(grown[0] / IDLE_CLIENTS))
