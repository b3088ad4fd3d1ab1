"""chat-load latency, interrupted mid-sweep, keeps the scenarios that finished.

The signal itself is tested end to end in tests/test_signals.py; here the
sweep's bookkeeping is checked with a stand-in for ``run_scenario``, so the
test does not depend on when a signal lands.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import pytest

import loadtest.latency as latency
from loadtest.scenario import Scenario
from reference.signals import terminate_as_interrupt


class _Status:
    def update(self, **fields: Any) -> None:
        pass


def _scenario(clients: int) -> Scenario:
    return Scenario.build(host="127.0.0.1", port=1, clients=clients, senders=clients, rate=10.0,
                          size=64, duration_s=1.0, messages=None, warmup_s=0.0)


@pytest.mark.skipif(sys.platform == "win32", reason="os.kill(own pid, SIGTERM) terminates the process "
                    "on Windows instead of delivering a signal")
def test_an_interrupted_sweep_keeps_the_finished_scenarios(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def fake_run(scenario: Scenario, server_pid: int | None, on_progress: Any) -> dict[str, Any]:
        calls.append(scenario.clients)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives as KeyboardInterrupt, as in a real run
        return {"clients": scenario.clients}

    monkeypatch.setattr(latency, "run_scenario", fake_run)
    with terminate_as_interrupt() as caught:
        records, error = latency.run_latency([_scenario(n) for n in (2, 5, 10)], None,
                                             _Status())  # type: ignore[arg-type]
    assert caught.happened and caught.exit_status == 143
    assert records == [{"clients": 2}]
    assert error == "interrupted during the 5-client scenario: 1 of 3 scenarios finished"
    assert calls == [2, 5]
