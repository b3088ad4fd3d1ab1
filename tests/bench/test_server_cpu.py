"""bench/server_cpu.py: the server-CPU A/B tool runs, pairs its rounds and refuses bad input."""

from __future__ import annotations

import re
import sys

import pytest

from bench import server_cpu

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="server CPU time needs /proc")


def test_fanout_pairs_the_reference_with_the_naive_server(capsys: pytest.CaptureFixture[str]) -> None:
    assert server_cpu.main(["fanout", "--rounds", "3", "--block", "5", "--cpu", "none"]) == 0
    out = capsys.readouterr().out
    figures = dict(re.findall(r"^(target|naive) +([\d.]+) us of server CPU per message$", out, re.M))
    assert set(figures) == {"target", "naive"} and all(float(v) > 0 for v in figures.values())
    assert re.search(r"^target / naive: [\d.]+ \(median of 3 rounds", out, re.M)


def test_an_unknown_baseline_or_cpu_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert server_cpu.main(["fanout", "--against", "nosuch", "--cpu", "none"]) == 2
    assert server_cpu.main(["fanout", "--cpu", "banana"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[0].startswith("server_cpu: unknown server") and "banana" in err[1]
