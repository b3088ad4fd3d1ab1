"""The machine-speed calibration workload: a loopback ping-pong plus a pure-Python loop.

One calibration round is one 32-byte round trip with bench/echo_peer.py (two
processes, syscalls, the loopback stack, the scheduler: what the server
benchmarks pay for) followed by a fixed CPU-bound Python loop of about the same
length (what the codec benchmarks pay for).  Neither touches chat code.

It is measured twice per run, with the same workload:

* as the benchmark ``test_calibration`` (group ``calibration``), so every
  result can be read as a ratio to it, and the comparison can say how much
  faster or slower this machine was than the baseline's;
* around every other benchmark: the median of a short burst of rounds right
  before and right after it, averaged into ``extra_info["calibration_s"]``.
  reports/benchjson.py divides by this one when present.  Why: a shared VM
  changes speed by up to 2x for seconds at a time (measured on the 2-core
  development VM: a CPU loop took 12 us or 21 us depending on the moment), so
  a calibration measured at another moment of the run does not cancel it.
  In-process benchmarks (the codec) are measured against the CPU loop alone
  (``CALIBRATION_WORKLOAD = "cpu"`` in their module): under load a ping-pong
  slows down differently from pure computation, and the codec has no I/O.
"""

from __future__ import annotations

import socket
import time

from bench.rooms import pingpong_round

PINGPONG = b"p" * 32
#: Rounds per local measurement (before and after each benchmark): ~5 ms each.
LOCAL_ROUNDS = 100


def cpu_loop() -> int:
    """A fixed pure-Python workload (integer arithmetic in a loop, ~15 us)."""
    total = 0
    for i in range(300):
        total += i * i
    return total


#: The workloads a benchmark module may choose with ``CALIBRATION_WORKLOAD``.
WORKLOADS = ("full", "cpu")


def calibration_round(sock: socket.socket) -> None:
    pingpong_round(sock, PINGPONG)
    cpu_loop()


def measure_calibration(sock: socket.socket, rounds: int = LOCAL_ROUNDS, workload: str = "full") -> float:
    """Median seconds of ``rounds`` calibration rounds (``full``) or CPU loops (``cpu``)."""
    if workload not in WORKLOADS:
        raise ValueError(f"unknown calibration workload {workload!r}; expected one of {WORKLOADS}")
    times = []
    clock = time.perf_counter
    for _ in range(rounds):
        start = clock()
        if workload == "cpu":
            cpu_loop()
        else:
            calibration_round(sock)
        times.append(clock() - start)
    times.sort()
    return times[len(times) // 2]
