"""Fixtures for the benchmarks: the target server, the naive baseline, the calibration peer.

The target comes from the project's own pytest plugin (reference/pytest_plugin.py,
options ``--chat-server`` / ``--chat-server-cmd``, fixture ``chat_target``): the
embedded reference server by default, or any server.  Every server benchmark is
parametrised over ``server``: the target -- id ``reference`` by default, id
``target`` when one was chosen on the command line, so results of different
servers are never paired by a comparison as if they were the same -- and
``naive``, the blocking-send baseline (bench/naive_server.py), measured in the
same run.  All processes are started and stopped through reference.target.
"""

from __future__ import annotations

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

BENCH_DIR = Path(__file__).resolve().parent
NAIVE_SERVER = BENCH_DIR / "naive_server.py"
ECHO_PEER = BENCH_DIR / "echo_peer.py"
#: Options a confirmation re-run must repeat to measure the same thing the same way.
RERUN_OPTIONS = ("chat_server", "chat_server_cmd", "chat_start_timeout", "benchmark_max_time",
                 "benchmark_min_rounds", "benchmark_min_time")


def target_kind(spec: TargetSpec) -> str:
    return "reference" if spec.is_reference else "target"


def _spawn_command(script: Path, *args: str) -> str:
    return join_command([sys.executable, str(script), *args])


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "server" in metafunc.fixturenames:
        kinds = [target_kind(target_spec(metafunc.config)), "naive"]
        metafunc.parametrize("server", kinds, indirect=True, scope="session")


def pytest_report_header(config: pytest.Config) -> list[str]:
    spec = target_spec(config)
    return [f"chat-harness bench: server={target_kind(spec)} is {spec.label}; "
            f"server=naive is {NAIVE_SERVER.name} (blocking-send baseline)"]


@pytest.fixture(scope="session")
def naive_server(chat_target_spec: TargetSpec) -> Iterator[SpawnedServer | ExternalServer]:
    spec = TargetSpec(command=_spawn_command(NAIVE_SERVER, "--port", "0"),
                      start_timeout=chat_target_spec.start_timeout)
    with open_target(spec) as handle:
        handle.label = "naive baseline (bench/naive_server.py)"
        yield handle


@pytest.fixture(scope="session")
def server(request: pytest.FixtureRequest) -> BenchServer:
    """The server under test for this parameter (see the module docstring)."""
    kind = request.param
    handle = request.getfixturevalue("naive_server" if kind == "naive" else "chat_target")
    return BenchServer(kind=kind, address=handle.address, label=handle.label)


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


def pytest_benchmark_update_json(config: pytest.Config, benchmarks: list[dict[str, Any]],
                                 output_json: dict[str, Any]) -> None:
    """Record which servers ran, and how to re-run a benchmark the same way (compare --confirm)."""
    spec = target_spec(config)
    rerun_args = [f"--{name.replace('_', '-')}={config.getoption(name)}"
                  for name in RERUN_OPTIONS if config.getoption(name) is not None]
    output_json["chat_harness"] = {
        "target": spec.label,
        "target_kind": target_kind(spec),
        "naive": str(NAIVE_SERVER.relative_to(BENCH_DIR.parent)),
        "rootdir": str(config.rootpath),
        "rerun_args": rerun_args,
    }


@pytest.fixture(scope="session")
def echo_peer(chat_target_spec: TargetSpec) -> Iterator[tuple[str, int]]:
    """Address of the calibration echo process."""
    spec = TargetSpec(command=_spawn_command(ECHO_PEER), start_timeout=chat_target_spec.start_timeout)
    with open_target(spec) as handle:
        yield handle.address
