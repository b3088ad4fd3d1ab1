"""The benchmark regression gate on real measurements (bench/compare.py, tox -e bench-compare).

One module-scoped pair of real benchmark runs (calibration + fan-out at 1, 10
and 100 receivers, short): a baseline against the reference server given as a
running address (``--chat-server``), and a current run against the reference
server with an injected 5 ms sleep per relay (tests/servers/slow_server.py,
``--chat-server-cmd``).  Both runs call the target ``target``, so they pair up.

Proven here:
* the injected real slowdown fails the gate (exit 1), and still fails after
  ``--confirm`` re-measures it;
* unchanged code on a uniformly slower run passes: the real baseline with every
  time, calibration included, multiplied by 3 -- and fails when only the code
  got slower, so the pass is the normalisation's doing;
* pytest-benchmark's own --benchmark-compare / --benchmark-compare-fail still
  work on these benchmarks (they catch the slow server too).
Fan-out at 100 receivers is not asserted on: 5 ms on top of a few ms can hide
in the noise of a shared machine; fan-out at 1 and 10 (well under 1 ms each,
even under load) become several times slower.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reference.process_group import join_command
from reference.target import TargetSpec, open_target
from reports.results import load_document

pytestmark = pytest.mark.slow  # subprocesses and real servers: not in the fast lane

ROOT = Path(__file__).resolve().parents[2]
COMPARE = ROOT / "bench" / "compare.py"
SLOW_SERVER = ROOT / "tests" / "servers" / "slow_server.py"
SELECTION = "calibration or (fanout and not naive)"
SHORT = ("--benchmark-max-time=0.05", "--benchmark-min-rounds=5")


@dataclass(frozen=True)
class GateRuns:
    baseline: Path
    slow: Path
    slow_output: str           # pytest's output of the slow run (with --benchmark-compare-fail)
    slow_returncode: int


def run_bench(*options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "bench", "-p", "no:cacheprovider", "-q",
                           "-k", SELECTION, *SHORT, *options],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def run_compare(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(COMPARE), *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def gate_runs(tmp_path_factory: pytest.TempPathFactory) -> GateRuns:
    tmp = tmp_path_factory.mktemp("gate")
    storage = f"--benchmark-storage=file://{tmp / 'storage'}"
    with open_target(TargetSpec()) as reference:
        host, port = reference.address
        base = run_bench(f"--chat-server={host}:{port}", f"--benchmark-json={tmp / 'base.json'}",
                         storage, "--benchmark-save=base")
    assert base.returncode == 0, base.stdout[-3000:] + base.stderr[-3000:]
    slow_cmd = join_command([sys.executable, str(SLOW_SERVER), "{port}", "--delay-ms", "5"])
    slow = run_bench(f"--chat-server-cmd={slow_cmd}", f"--benchmark-json={tmp / 'slow.json'}", storage,
                     "--benchmark-compare=0001", "--benchmark-compare-fail=median:100%")
    return GateRuns(tmp / "base.json", tmp / "slow.json", slow.stdout + slow.stderr, slow.returncode)


def scaled_copy(source: Path, target: Path, factor: float, *, calibration_too: bool) -> Path:
    """The run as a machine ``factor`` times slower would have measured it."""
    data: dict[str, Any] = json.loads(source.read_text())
    for bench in data["benchmarks"]:
        is_calibration = bench["group"] == "calibration"
        if calibration_too or not is_calibration:
            for key in ("min", "max", "mean", "stddev", "median", "q1", "q3", "iqr", "total"):
                bench["stats"][key] *= factor
        if calibration_too:
            for key in ("calibration_s", "calibration_before_s", "calibration_after_s"):
                bench["extra_info"][key] *= factor
    target.write_text(json.dumps(data))
    return target


def status_of(output: str, name: str) -> str:
    line = next(line for line in output.splitlines() if line.startswith(name + " "))
    return line.split()[-1]


def test_injected_slowdown_fails_the_gate(gate_runs: GateRuns) -> None:
    done = run_compare(gate_runs.baseline, gate_runs.slow)
    assert done.returncode == 1, done.stdout + done.stderr
    assert status_of(done.stdout, "test_fanout_latency[1]") == "SLOWER"
    assert status_of(done.stdout, "test_fanout_latency[10]") == "SLOWER"
    assert "FAIL: " in done.stdout
    assert "test_fanout_latency[1]" in done.stdout.splitlines()[-1]


def test_confirmation_rerun_still_fails_a_real_slowdown(gate_runs: GateRuns) -> None:
    done = run_compare(gate_runs.baseline, gate_runs.slow, "--confirm", "1")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "confirming" in done.stderr and "attempt 1 of 1" in done.stderr
    assert "best of 2 runs" in done.stdout  # the re-run joined the current side
    assert status_of(done.stdout, "test_fanout_latency[1]") == "SLOWER"


def test_unchanged_code_on_a_uniformly_slower_run_passes(gate_runs: GateRuns, tmp_path: Path) -> None:
    slower_machine = scaled_copy(gate_runs.baseline, tmp_path / "x3.json", 3.0, calibration_too=True)
    done = run_compare(gate_runs.baseline, slower_machine, "--json", tmp_path / "doc.json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "this machine x3.00" in done.stdout
    assert status_of(done.stdout, "test_fanout_latency[1]") == "ok"
    assert "PASS: " in done.stdout
    document = load_document(tmp_path / "doc.json", kind="bench")
    assert document["summary"]["benchmarks"] == 4

    slower_code = scaled_copy(gate_runs.baseline, tmp_path / "code.json", 3.0, calibration_too=False)
    assert run_compare(gate_runs.baseline, slower_code).returncode == 1


def test_pytest_benchmark_compare_fail_still_works(gate_runs: GateRuns) -> None:
    assert gate_runs.slow_returncode != 0
    assert "Performance has regressed" in gate_runs.slow_output
    assert "test_fanout_latency[1] (0001_base)" in gate_runs.slow_output


def test_update_baseline_keeps_the_statistics_and_drops_per_round_timings(gate_runs: GateRuns,
                                                                          tmp_path: Path) -> None:
    folder = tmp_path / "baseline"
    folder.mkdir()
    (folder / "stale.json").write_text("{}")
    done = run_compare(folder, gate_runs.baseline, gate_runs.slow, "--update-baseline")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["run1.json", "run2.json"]
    first = json.loads((folder / "run1.json").read_text())
    assert all("data" not in bench["stats"] for bench in first["benchmarks"])
    assert (folder / "run1.json").stat().st_size < gate_runs.baseline.stat().st_size
    # The slimmed files still judge: run1 is the reference run, run2 the slow-server run.
    assert run_compare(folder / "run1.json", gate_runs.baseline).returncode == 0
    assert run_compare(folder / "run2.json", gate_runs.baseline).returncode == 0
    assert run_compare(folder / "run1.json", gate_runs.slow).returncode == 1


def test_confirm_says_so_when_a_run_cannot_be_repeated(gate_runs: GateRuns, tmp_path: Path) -> None:
    """A JSON from elsewhere (no record of how it ran) is judged as it is, with a reason."""
    foreign = json.loads(gate_runs.slow.read_text())
    del foreign["chat_harness"]
    (tmp_path / "foreign.json").write_text(json.dumps(foreign))
    done = run_compare(gate_runs.baseline, tmp_path / "foreign.json", "--confirm", "2")
    assert done.returncode == 1
    assert "cannot confirm: the current JSON does not say how it was run" in done.stderr


@pytest.mark.parametrize("args, message", [
    (("--threshold", "fast"), "'fast' is not a percentage"),
    (("--threshold", "0"), "must be above 0"),
    (("--confirm", "-1"), "must not be negative"),
])
def test_bad_arguments_are_one_line_and_exit_2(gate_runs: GateRuns, args: tuple[str, ...],
                                               message: str) -> None:
    done = run_compare(gate_runs.baseline, gate_runs.baseline, *args)
    assert done.returncode == 2
    assert message in done.stderr.strip().splitlines()[-1]


def test_unreadable_files_exit_2(gate_runs: GateRuns, tmp_path: Path) -> None:
    done = run_compare(gate_runs.baseline, tmp_path / "absent.json")
    assert done.returncode == 2
    assert "absent.json: no such file" in done.stderr
