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
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtest.swarm.cli import locust_command, run_time
from loadtest.swarm.cli import main as swarm_main
from reference.target import ExternalServer, SpawnedServer, TargetSpec, find_free_port, open_target
from reports.results import load_document

pytestmark = [
    pytest.mark.slow,  # subprocesses and real servers: not in the fast lane
    pytest.mark.skipif(sys.platform == "win32", reason="locust's --processes forks and these tests "
                       "stop locust's process group with os.killpg (POSIX only)"),
]

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


def test_microsecond_latency_is_the_chat_histogram_not_a_row_under_ms_headers(server, tmp_path) -> None:
    """One swarm: locust's table (console, HTML) holds only ms entries; --chat-json has the µs."""
    html, results = tmp_path / "report.html", tmp_path / "swarm.json"
    done = _run(_locust("--headless", "--host", _host(server.address, "tcp://"), "-u", "4", "-r", "10",
                        "-t", "3s", "--chat-rate", "10", "--html", str(html),
                        "--chat-json", str(results), "Chatter", "Lurker"), tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]

    doc = load_document(results, kind="locust")
    records = {r["name"]: r for r in doc["records"]}
    assert US_ENTRY not in records and all(r["unit"] == "ms" for r in records.values())
    assert doc["summary"]["ok"] and doc["summary"]["failures"] == 0
    latency, ms = doc["summary"]["latency_us"], records["broadcast"]
    # The same deliveries, timed once: the µs histogram has every one locust counted.
    assert latency["count"] == ms["num_requests"] > 0
    assert abs(latency["mean"] - ms["mean_us"]) < 0.01 * ms["mean_us"] + 1
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    assert "locust_bottleneck" in doc["summary"]
    # Every reader wake-up that brought relays was counted: at least one relay each.
    assert doc["summary"]["relays_per_read"] >= 1 and doc["summary"]["received_per_cpu_s"] > 0
    assert US_ENTRY not in done.stdout and US_ENTRY not in html.read_text(encoding="utf-8")


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
                "--only-summary", "--json-file", str(tmp_path / "master"),
                "--chat-json", str(tmp_path / "chat.json"), "Chatter", "Lurker"),
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
    # The workers' µs histograms reach the master whole: one timing per broadcast.
    summary = load_document(tmp_path / "chat.json", kind="locust")["summary"]
    assert summary["latency_us"]["count"] == stats["broadcast"]["num_requests"] > 0
    assert len(summary["locust_process"]["processes"]) == 2  # each worker watched itself
    assert all(worker.returncode == 0 for worker in workers)


# -- chat-swarm's command line: locust's time forms, pass-through, signals ---------------------
@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("10s", 10), ("1m30s", 90), ("2m", 120),
                                               ("1h", 3600), ("1H5S", 3605)])
def test_run_time_takes_locusts_forms(text: str, seconds: int) -> None:
    assert run_time(text) == seconds


@pytest.mark.parametrize("text", ["0", "0s", "abc", "1x", "1m30", "-5", ""])
def test_a_bad_run_time_is_one_usage_line(text: str, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        swarm_main(["-t", text])
    assert exc.value.code == 2
    assert "run time" in capsys.readouterr().err.strip().splitlines()[-1]


def test_locust_refuses_unknown_flags_before_any_server_starts(tmp_path: Path, capsys) -> None:
    marker = tmp_path / "started"
    command = f"{sys.executable} -c 'open({str(marker)!r}, \"w\")' {{port}}"
    code = swarm_main(["--server-cmd", command, "-t", "5", "--", "--no-such-locust-flag"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and not marker.exists()
    assert err[-1].startswith("chat-swarm: locust refused the options --no-such-locust-flag: ")


def test_loopback_binding_unless_asked_otherwise() -> None:
    headless = locust_command("127.0.0.1:1", 2, 2.0, 5, Path("x.json"), ["--processes", "2"])
    assert headless[headless.index("--master-bind-host") + 1] == "127.0.0.1" and "--headless" in headless
    web = locust_command("127.0.0.1:1", 2, 2.0, 5, Path("x.json"), [], web=True)
    assert web[web.index("--web-host") + 1] == "127.0.0.1" and "--headless" not in web
    opened = locust_command("127.0.0.1:1", 2, 2.0, 5, Path("x.json"), ["--web-host", "0.0.0.0"], web=True)
    assert opened.count("--web-host") == 1 and opened[opened.index("--web-host") + 1] == "0.0.0.0"


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "status", "name"), [(signal.SIGINT, 130, "Ctrl-C (SIGINT)"),
                                                         (signal.SIGTERM, 143, "SIGTERM")])
def test_a_signal_ends_the_swarm_with_locusts_statistics_and_one_line(signum, status, name,
                                                                      tmp_path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "loadtest.swarm.cli", "-u", "3", "-t", "60",
                             "--", "--chat-rate", "5", "Chatter"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
                            start_new_session=True)
    try:
        first = proc.stdout.readline() if proc.stdout else ""
        host = re.search(r" at (127\.0\.0\.1:\d+): ", first)
        assert host, first
        time.sleep(5)  # locust is up and chatting
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=PROCESS_TIMEOUT)
    finally:
        _kill_group(proc)  # type: ignore[arg-type]
    assert proc.returncode == status, out[-3000:]
    assert "Traceback" not in out and "KeyboardInterrupt" not in out
    assert re.search(r"chat\s+broadcast", out), "locust's final statistics are missing"
    last = out.strip().splitlines()[-1]
    assert last.startswith(f"chat-swarm: stopped by {name}")
    address, port = host.group(1).rsplit(":", 1)
    with pytest.raises(OSError):  # the server it started is gone
        socket.create_connection((address, int(port)), timeout=2).close()


def test_chat_swarm_over_tls(tmp_path: Path, capfd) -> None:
    """--tls: the embedded reference with a throwaway certificate; locust gets --host tls://
    and the CA file, and every chatter's messages arrive."""
    results = tmp_path / "swarm.json"
    code = swarm_main(["--tls", "-u", "3", "-t", "3", "--json", str(results), "--", "--chat-rate", "5",
                       "--only-summary"])
    out = "".join(capfd.readouterr())
    assert code == 0, out[-3000:]
    assert re.search(r"--host tls://127\.0\.0\.1:\d+ .*--chat-tls-ca \S+ca\.pem", out), out[-3000:]
    summary = load_document(results, kind="locust")["summary"]
    assert summary["ok"] and summary["received"] > 0 and summary["lost"] == 0
