"""Crowd benchmarks: saturation throughput, memory per idle client (drivers in bench/crowd.py).

* ``test_saturation``: 100 registered clients chat as fast as the server
  lets them: each round, every client sends one 32-byte message and the
  round ends when all 9,900 relays have arrived.  The figure is the server's
  CPU time per delivery (``deliveries_per_cpu_s`` is its inverse).  The
  target, the naive and the asyncio baselines each hold a crowd of their own
  at once, and every round measures one round on each, the order alternating
  (bench/paired.py); the same-run ratios are the medians of the per-round
  ratios.  CPU time, not wall time: the clients share the machine and would
  otherwise set the pace.  Needs servers this run started (their pids).
* ``test_memory_per_idle_client``: the target's resident memory grown per
  registered, silent client, with 10,000 of them (``bytes_per_idle_client``),
  in a target process of its own; the timed part is opening and registering
  them all.
"""

from __future__ import annotations

import resource
from collections.abc import Callable
from contextlib import ExitStack

import pytest

from bench.crowd import idle_crowd, open_crowd, server_cpu_seconds
from bench.paired import PairedRounds, cpu_per_unit
from bench.rooms import BenchServer
from reference.target import TargetSpec, open_target

SATURATION_CLIENTS = 100
IDLE_CLIENTS = 10_000


#: Paired rounds of the saturation benchmark (each one 9,900 deliveries on every server).
SATURATION_ROUNDS = 21


@pytest.mark.benchmark(group="saturation")
def test_saturation(benchmark, paired_servers: dict[str, BenchServer]) -> None:
    pids = {kind: s.pid for kind, s in paired_servers.items()}
    if any(pid is None or server_cpu_seconds(pid) is None for pid in pids.values()):
        pytest.skip("server CPU time needs server processes this run started, and Linux /proc")
    with ExitStack() as stack:
        crowds = {kind: stack.enter_context(open_crowd(s.address, SATURATION_CLIENTS))
                  for kind, s in paired_servers.items()}
        for crowd in crowds.values():
            crowd.round()  # warm-up: every connection has carried traffic once
            crowd.deliveries = 0

        def block(kind: str) -> Callable[[], float]:
            pid = pids[kind]
            assert pid is not None
            return lambda: cpu_per_unit(pid, crowds[kind].round)

        paired = PairedRounds(block("target"), {k: block(k) for k in crowds if k != "target"},
                              figure_name="server CPU seconds per delivery")
        benchmark.pedantic(paired.target, setup=paired.setup, teardown=paired.teardown,
                           rounds=SATURATION_ROUNDS)
    medians = paired.extra_info()["paired_medians"]
    assert isinstance(medians, dict)
    benchmark.extra_info.update(
        paired.extra_info(), server=paired_servers["target"].label, clients=SATURATION_CLIENTS,
        payload_bytes=32, deliveries=crowds["target"].deliveries,
        deliveries_per_cpu_s={kind: round(1 / value) for kind, value in medians.items()})


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
