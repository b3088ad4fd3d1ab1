"""The benchmark's own servers and suite layout: the baselines, the slow server, the ids.

The naive and asyncio baselines (bench/naive_server.py, bench/asyncio_server.py)
must speak the protocol correctly
for well-behaved clients, or the comparison with the reference means nothing;
the slow server (tests/servers/slow_server.py) must be slow and still correct.
Every server is started through reference.target, every wait is bounded.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reference.client import ChatClient
from reference.process_group import join_command
from reference.target import SpawnedServer, TargetSpec, open_target

ROOT = Path(__file__).resolve().parents[2]
NAIVE = ROOT / "bench" / "naive_server.py"
ASYNCIO = ROOT / "bench" / "asyncio_server.py"
SLOW = ROOT / "tests" / "servers" / "slow_server.py"
TIMEOUT = 10.0


def spawn(script: Path) -> Iterator[SpawnedServer]:
    command = join_command([sys.executable, str(script), "--port", "0"])
    with open_target(TargetSpec(command=command)) as handle:
        assert isinstance(handle, SpawnedServer)
        yield handle


@pytest.fixture(params=[NAIVE, ASYNCIO], ids=["naive", "asyncio"])
def baseline(request: pytest.FixtureRequest) -> Iterator[SpawnedServer]:
    yield from spawn(request.param)


def test_baseline_servers_relay_to_others_not_back_to_the_sender(baseline: SpawnedServer) -> None:
    with ChatClient.connect(*baseline.address, name="ana", timeout=TIMEOUT) as ana, \
            ChatClient.connect(*baseline.address, name="bo", timeout=TIMEOUT) as bo:
        bo.send("bo is here")  # bo is registered once ana has this
        assert ana.receive().text == "bo is here"
        ana.send("héllo")
        relay = bo.receive()
        assert (relay.sender, relay.text) == ("ana", "héllo")
        assert ana.expect_silence(0.2) is None


def test_baseline_servers_relay_1_mib_intact_and_survive_a_leaver(baseline: SpawnedServer) -> None:
    text = "0123456789abcdef" * (1024 * 1024 // 16)
    with ChatClient.connect(*baseline.address, name="ana", timeout=TIMEOUT) as ana, \
            ChatClient.connect(*baseline.address, name="bo", timeout=TIMEOUT) as bo:
        leaver = ChatClient.connect(*baseline.address, name="leaver", timeout=TIMEOUT)
        leaver.send("ready")
        assert ana.receive().sender == "leaver"
        assert bo.receive().sender == "leaver"
        leaver.close()
        ana.send(text)
        assert bo.receive(timeout=30).text == text
        assert baseline.is_alive()


def test_asyncio_baseline_refuses_invalid_utf8_before_relaying() -> None:
    """FRAME-4: the asyncio baseline pays for the same UTF-8 check as the reference."""
    for handle in spawn(ASYNCIO):
        with ChatClient.connect(*handle.address, name="ana", timeout=TIMEOUT) as ana, \
                ChatClient.connect(*handle.address, name="bo", timeout=TIMEOUT) as bo:
            bo.send("ready")
            assert ana.receive().text == "ready"
            ana.send_raw(b"2         \xc3(")
            ana.send("after")
            assert bo.expect_silence(0.3) is None


def test_naive_server_says_what_is_wrong_with_its_arguments() -> None:
    done = subprocess.run([sys.executable, str(NAIVE), "not-a-port"], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 2
    assert "invalid int value: 'not-a-port'" in done.stderr


def test_slow_server_delays_every_relay_and_still_relays_correctly() -> None:
    command = join_command([sys.executable, str(SLOW), "{port}", "--delay-ms", "200"])
    with open_target(TargetSpec(command=command)) as handle, \
            ChatClient.connect(*handle.address, name="ana", timeout=TIMEOUT) as ana, \
            ChatClient.connect(*handle.address, name="bo", timeout=TIMEOUT) as bo:
        bo.send("ready")
        assert ana.receive().text == "ready"
        started = time.monotonic()
        ana.send("slowly")
        relay = bo.receive()
        # A sleep lasts at least its duration, so this lower bound cannot flake.
        assert time.monotonic() - started >= 0.2
        assert (relay.sender, relay.text) == ("ana", "slowly")


def collect(*options: str) -> list[str]:
    # --bench-cpu none: collecting measures nothing, and pinned to one CPU of a busy machine
    # the collection alone took over 30 s.
    done = subprocess.run([sys.executable, "-m", "pytest", "bench", "--collect-only", "-q",
                           "-p", "no:cacheprovider", "--bench-cpu", "none", *options],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return [line for line in done.stdout.splitlines() if "::" in line]


@pytest.mark.slow  # pytest in a subprocess collecting bench/ (1-2 times): 3-8 s
def test_suite_has_every_benchmark_the_issue_names() -> None:
    ids = collect()
    # Paired benchmarks: the target and the baselines measured round by round in one test.
    for receivers in (1, 10, 100):
        assert f"bench/test_server.py::test_fanout_latency[{receivers}]" in ids
    assert "bench/test_server.py::test_connection_setup" in ids
    assert "bench/test_server.py::test_relay_1mib" in ids
    assert "bench/test_crowd.py::test_saturation" in ids
    assert "bench/test_crowd.py::test_memory_per_idle_client" in ids
    for size in ("32B", "1KiB", "64KiB"):
        assert f"bench/test_codec.py::test_codec_encode[{size}]" in ids
        for feed in ("whole", "chunked"):
            assert f"bench/test_codec.py::test_codec_decode[{feed}-{size}]" in ids
    assert "bench/test_codec.py::test_generator_judges_one_read" in ids
    assert "bench/test_calibration.py::test_calibration" in ids


@pytest.mark.slow  # pytest in a subprocess collecting bench/ (1-2 times): 3-8 s
def test_k_selects_benchmarks_with_a_chosen_server() -> None:
    ids = collect("-k", "fanout", "--chat-server-cmd", "python3 myserver.py {port}")
    assert sorted(ids) == sorted(f"bench/test_server.py::test_fanout_latency[{n}]" for n in (1, 10, 100))
    ids = collect("-k", "relay", "--chat-server-cmd", "python3 myserver.py {port}")
    assert ids == ["bench/test_server.py::test_relay_1mib"]
