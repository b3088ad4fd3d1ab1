"""Fixtures for the benchmarks: the target server, the naive baseline, the calibration peer.

The target comes from the project's own pytest plugin (reference/pytest_plugin.py,
options ``--chat-server`` / ``--chat-server-cmd``, fixture ``chat_target``): the
embedded reference server by default, or any server.  ``paired_servers`` holds
it (key ``target``) and the baselines -- ``naive``, the blocking-send baseline
(bench/naive_server.py), and ``asyncio`` (bench/asyncio_server.py, a plain
asyncio server) -- all running at once, for the paired benchmarks
(bench/paired.py), which measure them round by round.  All processes are
started and stopped through reference.target, after ``--bench-cpu`` pinned
this session to one CPU (see ``pytest_addoption``).

After the run, the same-run ratios (reports/benchratios.py) are printed at the
end of the session and stored in the JSON (the target's
``extra_info["vs_naive"]`` / ``["vs_asyncio"]`` and ``chat_harness.ratios``),
where the gate (bench/compare.py) watches them.  The JSON records
``chat_harness.target_kind`` (``reference``, or ``target`` when one was chosen
on the command line), so results of different servers are never compared as
if they were the same.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.calibration import measure_calibration
from bench.rooms import BenchServer, pingpong_socket
from reference.process_group import join_command
from reference.pytest_plugin import target_spec
from reference.target import ExternalServer, SpawnedServer, TargetSpec, open_target
from reports.benchratios import (
    PAIRED_FIGURE,
    TARGET_KINDS,
    Point,
    SameRunRatio,
    point,
    ratio_key,
    same_run_ratios,
)

BENCH_DIR = Path(__file__).resolve().parent
NAIVE_SERVER = BENCH_DIR / "naive_server.py"
ASYNCIO_SERVER = BENCH_DIR / "asyncio_server.py"
#: Baseline kind -> (script, label).  Every server benchmark runs against "naive".
BASELINES = {
    "naive": (NAIVE_SERVER, "naive baseline (bench/naive_server.py)"),
    "asyncio": (ASYNCIO_SERVER, "asyncio baseline (bench/asyncio_server.py)"),
}
ECHO_PEER = BENCH_DIR / "echo_peer.py"
_POINTS = pytest.StashKey[list[Point]]()
#: Options a confirmation re-run must repeat to measure the same thing the same way.
RERUN_OPTIONS = ("bench_cpu", "chat_server", "chat_server_cmd", "chat_start_timeout", "benchmark_max_time",
                 "benchmark_min_rounds", "benchmark_min_time")


def target_kind(spec: TargetSpec) -> str:
    return "reference" if spec.is_reference else "target"


def _spawn_command(script: Path, *args: str) -> str:
    return join_command([sys.executable, str(script), *args])


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--bench-cpu", default="auto", metavar="CPU",
        help="run the benchmarks and every process they start on this one CPU (default auto: the "
             "highest-numbered CPU this process may use; 'none': wherever the scheduler likes). "
             "Why: two processes that ping-pong run about 4x faster on one core than on two "
             "(a context switch against a cross-CPU wakeup), and which of the two a pair gets "
             "is the scheduler's choice, kept for a whole run: pinned, every run is the same case.")


def pin_cpu(choice: str) -> int | None:
    """Pin this process (and so its children) to one CPU; return it, or None when not pinned."""
    if choice == "none" or not hasattr(os, "sched_setaffinity"):
        return None
    allowed = os.sched_getaffinity(0)
    if choice == "auto":
        cpu = max(allowed)
    else:
        try:
            cpu = int(choice)
        except ValueError:
            raise pytest.UsageError(f"--bench-cpu {choice!r}: expected a CPU number, auto or none") from None
        if cpu not in allowed:
            raise pytest.UsageError(f"--bench-cpu {cpu}: this process may use CPUs {sorted(allowed)}")
    os.sched_setaffinity(0, {cpu})
    return cpu


_PINNED = pytest.StashKey[int | None]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_PINNED] = pin_cpu(config.getoption("bench_cpu"))


def pytest_report_header(config: pytest.Config) -> list[str]:
    spec = target_spec(config)
    pinned = config.stash.get(_PINNED, None)
    where = f"every process on CPU {pinned}" if pinned is not None else "not pinned"
    return [f"chat-harness bench: {where} (--bench-cpu)",
            f"chat-harness bench: server={target_kind(spec)} is {spec.label}; "
            f"server=naive is {NAIVE_SERVER.name} (blocking-send baseline); "
            f"server=asyncio is {ASYNCIO_SERVER.name} (plain asyncio baseline)"]


def _baseline(kind: str, chat_target_spec: TargetSpec) -> Iterator[SpawnedServer | ExternalServer]:
    script, label = BASELINES[kind]
    spec = TargetSpec(command=_spawn_command(script, "--port", "0"),
                      start_timeout=chat_target_spec.start_timeout)
    with open_target(spec) as handle:
        handle.label = label
        yield handle


@pytest.fixture(scope="session")
def naive_server(chat_target_spec: TargetSpec) -> Iterator[SpawnedServer | ExternalServer]:
    yield from _baseline("naive", chat_target_spec)


@pytest.fixture(scope="session")
def asyncio_server(chat_target_spec: TargetSpec) -> Iterator[SpawnedServer | ExternalServer]:
    yield from _baseline("asyncio", chat_target_spec)


@pytest.fixture(scope="session")
def paired_servers(request: pytest.FixtureRequest) -> dict[str, BenchServer]:
    """The target (key "target") and every baseline server, all running at once.

    For the paired benchmarks (bench/paired.py), which measure them round by
    round in the same test instead of one after the other.
    """
    out = {}
    for kind, fixture in (("target", "chat_target"), *((k, f"{k}_server") for k in BASELINES)):
        handle = request.getfixturevalue(fixture)
        out[kind] = BenchServer(kind=kind, address=handle.address, label=handle.label,
                                pid=getattr(handle, "pid", None))
    return out


@pytest.fixture(autouse=True)
def _calibration_around_benchmark(request: pytest.FixtureRequest) -> Iterator[None]:
    """Measure the calibration right before and after each benchmark (see bench/calibration.py)."""
    if "benchmark" not in request.fixturenames:
        yield
        return
    benchmark = request.getfixturevalue("benchmark")
    workload = getattr(request.module, "CALIBRATION_WORKLOAD", "full")
    with pingpong_socket(request.getfixturevalue("echo_peer")) as sock:
        before = measure_calibration(sock, workload=workload)
        yield
        after = measure_calibration(sock, workload=workload)
    benchmark.extra_info.update(calibration_s=(before + after) / 2, calibration_workload=workload,
                                calibration_before_s=before, calibration_after_s=after)
    stats = getattr(benchmark, "stats", None)
    callspec = getattr(request.node, "callspec", None)
    if stats is not None:
        request.config.stash.setdefault(_POINTS, []).append(point(
            request.node.name, getattr(callspec, "params", {}), stats.stats.median, benchmark.extra_info))


def _format_ratio(r: SameRunRatio) -> str:
    return f"  {r.benchmark:<34} vs {r.baseline:<8} {r.ratio:6.2f}   ({r.figure_name})"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The same-run ratios (target / baseline, lower is better) after pytest-benchmark's tables."""
    ratios = same_run_ratios(terminalreporter.config.stash.get(_POINTS, []))
    if ratios:
        terminalreporter.write_sep("-", "same-run ratios: target / baseline (< 1.0: target better)")
        for r in ratios:
            terminalreporter.write_line(_format_ratio(r))


def pytest_benchmark_update_json(config: pytest.Config, benchmarks: list[dict[str, Any]],
                                 output_json: dict[str, Any]) -> None:
    """Record which servers ran, and how to re-run a benchmark the same way (compare --confirm)."""
    spec = target_spec(config)
    entries = output_json.get("benchmarks", [])  # dicts; ``benchmarks`` holds pytest-benchmark objects
    ratios = same_run_ratios(point(b["name"], b.get("params"), float(b["stats"]["median"]),
                                   b.get("extra_info") or {}) for b in entries)
    for bench in entries:
        key = ratio_key(bench["name"], bench.get("params"))
        name = key[0] if key is not None and key[1] in TARGET_KINDS else bench["name"]
        for r in ratios:
            if r.benchmark == name and (key is not None or r.figure_name == PAIRED_FIGURE):
                bench.setdefault("extra_info", {})[f"vs_{r.baseline}"] = round(r.ratio, 4)
    rerun_args = [f"--{name.replace('_', '-')}={config.getoption(name)}"
                  for name in RERUN_OPTIONS if config.getoption(name) is not None]
    output_json["chat_harness"] = {
        "target": spec.label,
        "target_kind": target_kind(spec),
        "naive": str(NAIVE_SERVER.relative_to(BENCH_DIR.parent)),
        "rootdir": str(config.rootpath),
        "rerun_args": rerun_args,
        "cpu": config.stash.get(_PINNED, None),
        "ratios": [r.as_dict() for r in ratios],
    }


@pytest.fixture(scope="session")
def echo_peer(chat_target_spec: TargetSpec) -> Iterator[tuple[str, int]]:
    """Address of the calibration echo process."""
    spec = TargetSpec(command=_spawn_command(ECHO_PEER), start_timeout=chat_target_spec.start_timeout)
    with open_target(spec) as handle:
        yield handle.address
