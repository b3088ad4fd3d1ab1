"""Machine-speed calibration, measured in every run (workload: bench/calibration.py).

Group ``calibration`` marks it for reports/benchjson.py.  It must never change
with the code under test: it runs no chat code at all.
"""

from __future__ import annotations

import pytest

from bench.calibration import PINGPONG, calibration_round
from bench.rooms import pingpong_round, pingpong_socket


@pytest.mark.benchmark(group="calibration")
def test_calibration(benchmark, echo_peer: tuple[str, int]) -> None:
    with pingpong_socket(echo_peer) as sock:
        benchmark.extra_info.update(calibration=True, pingpong_bytes=len(PINGPONG))
        benchmark(calibration_round, sock)
        # Still in step after all rounds: nothing left over, nothing missing.
        pingpong_round(sock, b"end")
