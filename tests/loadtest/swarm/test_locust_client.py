"""The locust swarm's gevent-free parts: sequence checks, the client, options, results.

Nothing here imports locust (it would monkey-patch pytest's process); the
client is driven with plain threads and a recording Reporter, against a
private reference server.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from loadtest.swarm.chat import ChatStats, judge_locust
from loadtest.swarm.cli import main as swarm_main
from loadtest.swarm.client import (
    BROADCAST,
    OTHER_CLOCK,
    UNSTAMPED,
    ChatClient,
    DisconnectedError,
    target_address,
    target_tls,
)
from loadtest.swarm.options import ChatOptions, add_chat_options
from loadtest.swarm.results import EntryStats, make_locust_document, summarize, summary_line
from reference.protocol import Relay
from reference.sequence import SequenceFailure
from reference.stamp import make_payload
from reference.target import ExternalServer, SpawnedServer, TargetSpec, open_target
from reference.tls import ClientTLS

ROOT = Path(__file__).resolve().parents[3]
SECOND = 1_000_000_000


# -- the client, against a private reference server ------------------------------------
@dataclass
class RecordingReporter:
    requests: list[tuple[str, float | None, int, Exception | None]] = field(default_factory=list)
    latencies: list[int | None] = field(default_factory=list)
    failures: list[SequenceFailure] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def request(self, name: str, response_time_ms: float | None, length: int,
                exception: Exception | None = None) -> None:
        with self.lock:
            self.requests.append((name, response_time_ms, length, exception))

    def delivered(self, latency_ns: int | None) -> None:
        with self.lock:
            self.latencies.append(latency_ns)

    def failed(self, kind: SequenceFailure) -> None:
        with self.lock:
            self.failures.append(kind)

    def named(self, name: str) -> list[tuple[str, float | None, int, Exception | None]]:
        with self.lock:
            return [r for r in self.requests if r[0] == name]


@pytest.fixture(scope="module")
def server() -> Iterator[SpawnedServer | ExternalServer]:
    with open_target(TargetSpec()) as handle:
        yield handle


def _receive(client: ChatClient, count: int, timeout: float = 10.0) -> None:
    __tracebackhide__ = True
    deadline = time.monotonic() + timeout
    start = client.received
    while client.received - start < count and time.monotonic() < deadline:
        client.receive_one(timeout=0.5)
    got = client.received - start
    assert got == count, f"received {got} of {count} messages within {timeout} s"


def test_client_reports_connect_register_send_and_one_broadcast_per_message(server) -> None:
    reporter = RecordingReporter()
    sender = ChatClient(server.address, reporter, size=100)
    reader = ChatClient(server.address, reporter)
    assert reader.connect() and sender.connect()
    time.sleep(0.2)  # both registered before the first message (JOIN-1)
    for _ in range(5):
        sender.send_message()
    _receive(reader, 5)
    sender.close()
    reader.finish()
    reader.close()

    assert [r[3] for r in reporter.named("connect")] == [None, None]
    assert [r[2] for r in reporter.named("register")] == [len(reader.name), len(sender.name)]
    sends = reporter.named("send")
    assert len(sends) == 5 and all(r[2] == 100 and r[3] is None for r in sends)
    broadcasts = reporter.named(BROADCAST)
    assert len(broadcasts) == 5 and all(r[3] is None for r in broadcasts)
    # The same latencies, in ms for locust's row and in ns for the chat statistics.
    assert len(reporter.latencies) == 5
    for (_, ms, _, _), ns in zip(broadcasts, reporter.latencies, strict=True):
        assert ms is not None and ns is not None and 0 < ms < 10_000 and abs(ns / 1e6 - ms) < 1e-6


def test_server_closing_on_us_is_one_disconnect_failure(server) -> None:
    reporter = RecordingReporter()
    client = ChatClient(server.address, reporter)
    assert client.connect()
    client._chat.send_raw(b"-1        ")  # type: ignore[union-attr]  # FRAME-3: server closes us
    _wait_for(lambda: not client.receive_one(timeout=0.5) and not client.connected)
    failures = reporter.named("disconnect")
    assert len(failures) == 1 and isinstance(failures[0][3], DisconnectedError)


def test_refused_connect_is_a_connect_failure() -> None:
    reporter = RecordingReporter()
    with open_target(TargetSpec()) as handle:
        address = handle.address
    client = ChatClient(address, reporter, timeout=2.0)
    assert not client.connect()
    assert [r[0] for r in reporter.requests] == ["connect"]
    assert isinstance(reporter.requests[0][3], OSError)


def _wait_for(condition, timeout: float = 10.0) -> None:
    __tracebackhide__ = True
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met within the timeout"


def _relay_client(reporter: RecordingReporter) -> ChatClient:
    return ChatClient(("127.0.0.1", 9), reporter, loss_grace=1.0)


def test_relay_checks_echo_mislabelling_loss_and_clock_domains() -> None:
    reporter = RecordingReporter()
    client = _relay_client(reporter)
    domain = client.name.rpartition("-")[0]
    now = time.monotonic_ns()
    client.on_relay(Relay(client.name, make_payload(client.sender_id, 0, now)), now)
    client.on_relay(Relay(f"{domain}-17", make_payload(18, 0, now)), now)
    client.on_relay(Relay(f"{domain}-17", make_payload(17, 0, now)), now)
    client.on_relay(Relay(f"{domain}-17", make_payload(17, 2, now)), now)   # 1 missing
    client.on_relay(Relay("otherboot-5", make_payload(5, 0, 123)), now)
    client.on_relay(Relay("ana", "hello"), now)
    client.finish()                                                          # 1 is lost
    kinds = [(r[0], type(r[3]).__name__ if r[3] else None, r[1] is None) for r in reporter.requests]
    assert kinds == [
        (BROADCAST, "EchoedMessage", True),
        (BROADCAST, "MislabelledMessage", True),
        (BROADCAST, None, False),
        (BROADCAST, None, False),
        (OTHER_CLOCK, None, True),
        (UNSTAMPED, None, True),
        (BROADCAST, "LostMessage", True),
    ]
    # two timed deliveries, the other machine's untimed, the mislabelled one delivered too
    assert reporter.latencies.count(None) == 2 and len(reporter.latencies) == 4
    assert reporter.failures == [SequenceFailure.ECHOED, SequenceFailure.MISLABELLED, SequenceFailure.LOST]


# -- options, host, results ---------------------------------------------------------------
def test_pyproject_tool_locust_holds_the_option_defaults() -> None:
    table = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["locust"]
    assert table["locustfile"] == "loadtest/locustfile.py"
    defaults = ChatOptions()
    chat_keys = {key for key in table if key.startswith("chat-")}
    # json and the TLS options have no default worth a config line (None, off)
    unset = {"json", "tls_ca", "tls_insecure"}
    assert chat_keys == {f"chat-{name.replace('_', '-')}" for name in vars(defaults) if name not in unset}
    for key in chat_keys:
        assert table[key] == getattr(defaults, key[len("chat-"):].replace("-", "_")), key


def test_chat_options_parse_and_refuse_bad_values(capsys) -> None:
    parser = argparse.ArgumentParser(prog="locust")
    add_chat_options(parser)
    options = ChatOptions.from_namespace(parser.parse_args(["--chat-size", "200", "--chat-rate", "2.5"]))
    assert (options.size, options.rate, options.json) == (200, 2.5, None)
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["--chat-rate", "0"])
    assert exc.value.code == 2
    assert "--chat-rate: '0' is not a finite number more than 0" in capsys.readouterr().err
    # Values typed into the web UI arrive as strings and are checked again.
    assert ChatOptions.from_namespace(argparse.Namespace(chat_slow_delay="0.5")).slow_delay == 0.5
    with pytest.raises(ValueError, match="--chat-size"):
        ChatOptions.from_namespace(argparse.Namespace(chat_size="big"))


def test_host_forms() -> None:
    assert target_address("tcp://127.0.0.1:4000") == ("127.0.0.1", 4000)
    assert target_address("localhost:4000") == ("localhost", 4000)
    assert target_address(None) == ("127.0.0.1", 1234)
    with pytest.raises(ValueError):
        target_address("http://example.com")


def test_results_count_failures_by_kind_and_take_latency_from_the_chat_histogram() -> None:
    entries = [
        EntryStats("chat", BROADCAST, num_requests=103, num_failures=3, num_none_requests=3,
                   mean=0.4, min=0.1, max=2.0, percentiles={"p50": 0, "p90": 1, "p99": 2, "p99_9": 2}),
        EntryStats("chat", "send", num_requests=50, num_failures=0),
    ]
    lost, duplicated = SequenceFailure.LOST.error(), SequenceFailure.DUPLICATED.error()
    errors = {repr(lost): 2, repr(duplicated): 1, "OSError()": 4}
    summary = summarize(entries, errors, duration_s=2.0)
    assert (summary["lost"], summary["duplicated"], summary["reordered"]) == (2, 1, 0)
    assert (summary["requests"], summary["failures"], summary["received"]) == (153, 3, 100)
    assert not summary["ok"]
    assert "2 lost, 1 duplicated" in summary_line(summary)
    chat = ChatStats()
    for us in range(1, 101):
        chat.delivered(us * 10_000)  # 10 .. 1000 µs
    verdict = judge_locust([{"name": "the locust process", "cpu_percent": 97.0, "lag_p99_us": 12_000}])
    doc = make_locust_document(entries, errors, host="127.0.0.1:1", address=("127.0.0.1", 1),
                               duration_s=2.0, users=3, cpu_warning=False, options={},
                               latency_us=chat.latency.summary(), locust_process=verdict)
    assert doc["kind"] == "locust"
    assert doc["summary"]["latency_us"]["p50"] == 500 and doc["summary"]["latency_us"]["max"] == 1000
    assert doc["summary"]["locust_bottleneck"]
    assert doc["summary"]["locust_process"]["warning"].startswith("THE LOCUST PROCESS, NOT THE SERVER")
    # µs never sit in locust's request table: every record is one of locust's ms entries
    assert [r["unit"] for r in doc["records"]] == ["ms", "ms"]
    assert doc["records"][0]["mean_us"] == 400.0


def test_locust_watches_itself_like_chat_load_watches_its_generator() -> None:
    idle_late = judge_locust([{"name": "worker 1", "cpu_percent": 4.0, "lag_p99_us": 20_000}])
    assert not idle_late["bottleneck"] and idle_late["warning"] is None
    assert "did not run it on time" in idle_late["notes"][0]
    fine = judge_locust([{"name": "the locust process", "cpu_percent": 30.0, "lag_p99_us": 800}])
    assert not fine["bottleneck"] and not fine["notes"]


def test_chat_stats_ship_deltas_from_workers_and_add_up_exactly() -> None:
    workers, master, whole = [ChatStats(), ChatStats()], ChatStats(), ChatStats()
    for i in range(1000):
        workers[i % 2].delivered(i * 7_919)
        whole.delivered(i * 7_919)
        if i % 4 == 0:
            workers[i % 2].read()   # one wake-up brought four relays
    workers[1].failed(SequenceFailure.MISLABELLED)
    for worker in workers:
        master.add_delta(worker.take_delta())
        delta = worker.take_delta()
        assert delta["deliveries"] == delta["reads"] == 0   # a delta is sent once
    assert master.latency.summary() == whole.latency.summary()
    assert master.deliveries == 1000 and master.reads == 250 and master.failures == {"mislabelled": 1}
    row = master.row()
    assert row["mislabelled"] == 1 and row["lost"] == 0 and row["p99_us"] == whole.latency.summary()["p99"]


def test_swarm_cli_refuses_bad_input_in_one_line(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        swarm_main(["-u", "0"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "chat-swarm: error: argument -u/--users: '0' is not a finite whole number more than 0"


def test_only_locust_side_modules_import_locust() -> None:
    """Importing the gevent-free modules must not monkey-patch the process."""
    code = ("import sys, loadtest, loadtest.swarm.client, loadtest.swarm.options, "
            "loadtest.swarm.results, loadtest.swarm.cli, loadtest.swarm.chat, reference.sequence; "
            "print(sorted(m for m in ('locust', 'gevent') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_tls_host_forms() -> None:
    assert target_address("tls://127.0.0.1:4000") == ("127.0.0.1", 4000)
    assert target_tls("tls://127.0.0.1:4000", "ca.pem") == ClientTLS(ca="ca.pem")
    assert target_tls("tls://127.0.0.1:4000", None, True) == ClientTLS(insecure=True)
    assert target_tls("127.0.0.1:4000", "ca.pem") is None and target_tls(None) is None


def test_client_connects_over_tls() -> None:
    with open_target(TargetSpec.parse(tls=True)) as handle:
        assert handle.tls is not None
        reporter = RecordingReporter()
        tls = ClientTLS(ca=handle.tls.ca)
        sender = ChatClient(handle.address, reporter, tls=tls)
        reader = ChatClient(handle.address, reporter, tls=tls)
        assert reader.connect() and sender.connect()
        time.sleep(0.2)
        sender.send_message()
        _receive(reader, 1)
        assert reader._chat is not None and reader._chat.sock.version() is not None  # type: ignore[attr-defined]
        sender.close()
        reader.close()


_READERS_UNDER_GEVENT = r"""
import select, sys, time
from gevent import monkey
monkey.patch_all()
import gevent
from loadtest.swarm.client import ChatClient

class Quiet:
    def request(self, *args, **kwargs): pass
    def delivered(self, latency_ns): pass
    def failed(self, kind): pass

spans = {}
real_on_relay = ChatClient.on_relay
def on_relay(self, relay, now_ns):
    real_on_relay(self, relay, now_ns)
    spans[self.name] = (now_ns, time.monotonic_ns())  # when timed, when its checks were done
ChatClient.on_relay = on_relay

address = (sys.argv[1], int(sys.argv[2]))
sender, first, second = (ChatClient(address, Quiet()) for _ in range(3))
assert sender.connect() and first.connect() and second.connect()
# Barrier: the sender repeats until both readers have one (JOIN-1: a reader gets what is sent
# after it registered), then a marker, which both read up to: their sockets are empty.
waiting, deadline = [first, second], time.monotonic() + 10
while waiting and time.monotonic() < deadline:
    sender.send_message()
    waiting = [c for c in waiting if not c.receive_one(0.2)]
marker = sender.sent
sender.send_message()
for client in (first, second):
    while client.checker.sequence.tracks[sender.sender_id].high < marker and time.monotonic() < deadline:
        client.receive_one(0.2)
spans.clear()
sender.send_message()
# The relay waits in both readers' sockets before they run: one wake-up makes both ready.
select.select([first._chat.sock], [], [], 5)
select.select([second._chat.sock], [], [], 5)
readers = [gevent.spawn(client.receive_one, 5.0) for client in (first, second)]
gevent.joinall(readers, timeout=10)
(timed_1, done_1), (timed_2, _) = spans[first.name], spans[second.name]
print("yielded" if timed_2 < done_1 else "queued")
"""


def test_swarm_readers_take_their_times_before_any_reader_checks(server) -> None:
    """Under gevent, a reader yields between its read and its checks: the second reader of one
    wake-up is timed before the first one's checks, not after them (the swarm would measure
    its own queue of readers)."""
    proc = subprocess.run([sys.executable, "-c", _READERS_UNDER_GEVENT, *map(str, server.address)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["yielded"]
