"""Real locust swarms, run as child processes on loopback: reports, failures, distribution.

Each test starts ``locust -f loadtest/locustfile.py`` (never importing locust
here: it would monkey-patch pytest) against a private reference server, or
through ``chat-swarm`` against the broken servers in tests/servers/, for a
few seconds.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtest.swarm.cli import main as swarm_main
from reference.target import ExternalServer, SpawnedServer, TargetSpec, find_free_port, open_target
from reports.results import load_document

pytestmark = pytest.mark.slow  # subprocesses and real servers: not in the fast lane

ROOT = Path(__file__).resolve().parents[3]
LOCUSTFILE = ROOT / "loadtest" / "locustfile.py"
US_ENTRY = "broadcast latency in µs"
#: Generous: locust starts slowly on a busy two-core machine.
PROCESS_TIMEOUT = 90


@pytest.fixture(scope="module")
def server() -> Iterator[SpawnedServer | ExternalServer]:
    with open_target(TargetSpec()) as handle:
        yield handle


def _host(address: tuple[str, int], scheme: str = "") -> str:
    return f"{scheme}{address[0]}:{address[1]}"


def _locust(*args: str) -> list[str]:
    return [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *args]


def _run(argv: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run one locust process to the end; never leave it behind."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=tmp_path, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=PROCESS_TIMEOUT)
    finally:
        _kill_group(proc)
    return subprocess.CompletedProcess(argv, proc.returncode, out, "")


def _kill_group(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait(10)


def _table_row(console: str, name: str) -> list[str]:
    """The last ``chat <name>`` row of locust's final statistics table, split on spaces."""
    rows = [line for line in console.splitlines()
            if re.match(rf"chat\s+{re.escape(name)}\s+\d", line) and "|" in line]
    assert rows, f"no console row for {name!r}"
    return rows[-1].replace("|", " ").split()


def test_sub_millisecond_latency_shows_in_console_html_and_results(server, tmp_path) -> None:
    """One swarm; the µs entry is in the console table, the HTML report and --chat-json."""
    html, results = tmp_path / "report.html", tmp_path / "swarm.json"
    done = _run(_locust("--headless", "--host", _host(server.address, "tcp://"), "-u", "4", "-r", "10",
                        "-t", "3s", "--chat-rate", "10", "--html", str(html),
                        "--chat-json", str(results), "Chatter", "Lurker"), tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]

    doc = load_document(results, kind="locust")
    records = {r["name"]: r for r in doc["records"]}
    ms, us = records["broadcast"], records[US_ENTRY]
    assert doc["summary"]["ok"] and doc["summary"]["failures"] == 0
    assert ms["num_requests"] == us["num_requests"] == doc["summary"]["latency_us"]["count"] > 0
    # Same samples: locust keeps exact mean/min/max, so the units must agree to < 1 µs.
    assert abs(ms["mean_us"] - us["mean_us"]) < 1
    assert abs(ms["max_us"] - us["max_us"]) < 1
    # The ms median is rounded to whole ms; the µs one keeps two significant digits.
    assert abs(us["median_us"] - ms["median_us"]) <= 1000
    assert us["median_us"] > 0

    # Console: the final table's µs row, Avg/Min/Max/Med in whole microseconds.
    row = _table_row(done.stdout, US_ENTRY)
    assert int(row[-3]) == us["median_us"]
    assert int(row[-5]) == round(us["min_us"]) and int(row[-4]) == round(us["max_us"])

    # HTML: the embedded statistics carry the same entry with its µs median.
    text = html.read_text(encoding="utf-8")
    stats = [json.loads(m) for m in re.findall(r'\{[^{}]*"name": "broadcast latency in \\u00b5s"[^{}]*\}',
                                                text)]
    medians = [s["median_response_time"] for s in stats if "median_response_time" in s]
    assert medians == [us["median_us"]]


@pytest.mark.parametrize(("server_file", "kind", "error"), [
    ("lossy_server.py", "lost", "LostMessage"),
    ("reordering_server.py", "reordered", "ReorderedMessage"),
])
def test_chat_swarm_fails_on_lost_or_reordered_messages(server_file, kind, error, tmp_path, capfd) -> None:
    """RELAY-4 breaches become locust failures, and chat-swarm's exit status says so."""
    results = tmp_path / "swarm.json"
    command = f"{sys.executable} {ROOT / 'tests' / 'servers' / server_file} --port {{port}}"
    code = swarm_main(["--server-cmd", command, "-u", "3", "-t", "4", "--json", str(results),
                       "--", "--chat-rate", "8", "--chat-loss-grace", "0.5", "--only-summary",
                       "Chatter"])
    captured = capfd.readouterr()
    out = captured.out + captured.err  # locust logs its tables to stderr
    assert code == 1, out[-3000:]
    summary = load_document(results, kind="locust")["summary"]
    assert summary[kind] > 0 and summary["failures"] >= summary[kind]
    assert summary["locust_exit_status"] == 1 and not summary["ok"]
    assert re.search(rf"\d+\s+chat broadcast: {error}\(", out), out[-3000:]


def test_distributed_swarm_workers_report_to_the_master(server, tmp_path) -> None:
    """A master and two workers on loopback; the master's own --json-file sums both."""
    port = find_free_port()
    master = subprocess.Popen(
        _locust("--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                "--headless", "--expect-workers", "2", "--expect-workers-max-wait", "60",
                "--host", _host(server.address), "-u", "6", "-r", "20", "-t", "4s",
                "--only-summary", "--json-file", str(tmp_path / "master"), "Chatter", "Lurker"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
        start_new_session=True)
    workers = [subprocess.Popen(
        _locust("--worker", "--master-host", "127.0.0.1", "--master-port", str(port)),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path, start_new_session=True)
        for _ in range(2)]
    try:
        out, _ = master.communicate(timeout=PROCESS_TIMEOUT)
        for worker in workers:
            worker.wait(PROCESS_TIMEOUT)
    finally:
        for proc in (master, *workers):
            _kill_group(proc)  # type: ignore[arg-type]
    assert master.returncode == 0, out[-3000:]
    assert "2 workers connected" in out
    stats = {e["name"]: e for e in json.loads((tmp_path / "master.json").read_text())}
    # Three users per worker: only both workers' reports add up to six connects.
    assert stats["connect"]["num_requests"] == 6 and stats["connect"]["num_failures"] == 0
    assert stats["send"]["num_requests"] > 0
    assert stats["broadcast"]["num_requests"] == stats[US_ENTRY]["num_requests"] > 0
    assert any(key < 1000 for key in map(float, stats[US_ENTRY]["response_times"]))
    assert all(worker.returncode == 0 for worker in workers)
