"""The conformance suite judged by its verdicts: it fails each broken server on the right case.

Every server in tests/servers/ has one realistic defect.  For each, the suite
runs as a user would (``chat-conformance --server-cmd ... --json``) on a few
cases: the ones the defect must fail, and controls it must still pass, so a
suite that failed everything would not pass these tests either.  The
reference server must pass the whole suite.

The runs mostly wait on the suite's own timeouts, so they are started
together, a few at a time, when the module's first test needs them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from reference.target import SpawnedServer
from reports.results import load_document

pytestmark = pytest.mark.slow  # subprocesses and real servers: not in the fast lane

ROOT = Path(__file__).resolve().parents[2]
SERVERS = ROOT / "tests" / "servers"
PARALLEL_RUNS = 4
RUN_TIMEOUT = 240.0


@dataclass(frozen=True)
class Judged:
    """A broken server, the cases to run on it, and the verdicts they must get."""

    server: str
    fails: tuple[str, ...]                      # must be "fail"
    passes: tuple[str, ...] = ()                # controls: must be "pass"
    non_strict: tuple[str, ...] = ()
    dialect: str | None = None                  # a phrase the report must use
    crashes: tuple[str, ...] = ()               # cases charged with the server's death (ROBUST-7)
    extra: tuple[str, ...] = ()                 # more chat-conformance arguments
    port_arg: str = "{port}"                    # how the server takes its port
    exit_status: int = 1
    says: tuple[str, ...] = ()                  # phrases the failed cases' details must hold
    may_also_say: tuple[str, ...] = ()          # other accounting words that are also true

    @property
    def cases(self) -> tuple[str, ...]:
        return self.fails + self.passes + self.non_strict


JUDGED = [
    Judged("tutorial_server.py",
           fails=("relay.basic[one-byte-per-send]", "relay.basic[header-split-at-4]",
                  "frame.large-message", "frame.invalid-utf8[message]", "robust.non-reader",
                  "frame.lenient-header-relayed-canonically", "robust.connection-burst"),
           passes=("relay.basic[whole-frames]", "relay.no-echo"),
           # (robust.connection-burst now lets the burst in first: the tutorial blocks reading a
           # silent burst connection's name, and fails the case without dying)
           crashes=("frame.invalid-utf8[message]",)),
    Judged("echo_server.py", fails=("relay.no-echo",),
           passes=("relay.basic[whole-frames]", "frame.large-message"), dialect="echo:"),
    # --no-preflight: the cases still judge a dialect (the preflight alone stops the run).
    Judged("single_frame_server.py", fails=("relay.basic[whole-frames]",),
           dialect="single-frame relay", extra=("--no-preflight",)),
    Judged("header_width_server.py", fails=("relay.basic[whole-frames]",),
           dialect="other header width: the server's frames have 8-byte headers",
           extra=("--no-preflight",)),
    Judged("unregistered_relay_server.py",
           fails=("join.unregistered-receives-nothing[silent]",
                  "join.unregistered-receives-nothing[half-sent-name]"),
           passes=("relay.basic[whole-frames]",)),
    Judged("utf8_crash_server.py",
           fails=("frame.invalid-utf8[message]", "robust.protocol-error-isolated[invalid-utf8-name]"),
           # Both run after a crash: they pass only if the server was started afresh.
           passes=("frame.over-limit", "relay.no-echo"),
           crashes=("frame.invalid-utf8[message]",
                    "robust.protocol-error-isolated[invalid-utf8-name]")),
    Judged("blocking_send_server.py", fails=("robust.non-reader",),
           passes=("relay.basic[one-byte-per-send]", "relay.basic[header-split-at-3]")),
    Judged("single_recv_payload_server.py", fails=("frame.large-message",),
           passes=("relay.basic[header-split-at-5]", "relay.basic[whole-frames]")),
    Judged("first_message_only_server.py", fails=("relay.basic[whole-frames]", "relay.burst-order")),
    # "copied the sender's header" only when it was a copy.
    Judged("tutorial_server.py", fails=("frame.lenient-header-relayed-canonically",),
           says=("the server copied the sender's header",)),
    Judged("right_justified_server.py", fails=("frame.lenient-header-relayed-canonically",),
           says=("the server writes non-canonical headers itself",)),
    # ROBUST-5 does not fail again for the FRAME-4 failure that frame.invalid-utf8 counts: the
    # room is checked afresh, by clients whose streams never held the relayed bad bytes.
    Judged("utf8_unchecked_server.py", fails=("frame.invalid-utf8[message]",),
           passes=("relay.basic[whole-frames]", "robust.protocol-error-isolated[invalid-utf8-message]")),
    # The burst's accounting names each kind of RELAY-4 breakage, counted, and only that kind.
    Judged("lossy_server.py", fails=("relay.burst-order",), says=(" lost",),
           port_arg="--port {port}"),
    Judged("reordering_server.py", fails=("relay.burst-order",), says=(" reordered",),
           # a held last message comes 0.5 s later, when the case may have stopped waiting
           may_also_say=(" lost",),
           port_arg="--port {port}"),
    Judged("duplicating_server.py", fails=("relay.burst-order",), says=(" duplicated",),
           port_arg="--port {port}"),
    Judged("right_justified_server.py", fails=("frame.canonical-headers",),
           passes=("relay.basic[whole-frames]",)),
    # Realistic single defects of student servers (issue 11): each fails the case of its rule.
    Judged("strip_payload_server.py", fails=("relay.corpus[trailing-spaces]", "relay.corpus[crlf]",
                                             "relay.corpus-name[name-padded]"),
           passes=("relay.corpus[two-byte-utf8]", "relay.basic[whole-frames]")),
    Judged("capped_fanout_server.py", fails=("relay.big-room",),
           passes=("relay.sender-label", "relay.join-leave-mid-stream")),
    Judged("idle_kick_server.py", fails=("relay.patient-reader",), passes=("relay.basic[whole-frames]",)),
    # Dies in the first quiet second: robust.quiet-spell keeps the whole room quiet for 1.5 s.
    Judged("quiet_crash_server.py", fails=("robust.quiet-spell",), passes=("relay.basic[whole-frames]",),
           crashes=("robust.quiet-spell",)),
    Judged("history_replay_server.py", fails=("join.no-history",)),
    Judged("duplicate_relay_server.py", fails=("relay.burst-order",), passes=("frame.over-limit",)),
    Judged("truncating_server.py", fails=("relay.largest-accepted", "relay.corpus[exactly-1-mib]"),
           passes=("relay.corpus[one-byte]", "relay.adjacent-frames")),
    # Both ROBUST-6 cases force a reset while the server relays to the client: caught every run.
    Judged("reset_crash_server.py", fails=("lifecycle.reset-during-fanout", "robust.reset-any-moment"),
           passes=("relay.basic[whole-frames]",),
           crashes=("lifecycle.reset-during-fanout", "robust.reset-any-moment")),
    # The burst leaves in waves while batches are relayed, against the order of the server's
    # writes: the one-recv() servers, which register half-sent names, write to the burst's
    # reset connections and die, every run.
    Judged("single_recv_payload_server.py", fails=("robust.connection-burst",),
           passes=("relay.basic[whole-frames]",), crashes=("robust.connection-burst",)),
    Judged("threaded_interleave_server.py", fails=("relay.concurrent-pairs",),
           passes=("relay.basic[whole-frames]", "frame.large-message")),
    # Judged inside TLS (--tls: the server makes its own certificate and prints its CA file).
    Judged("tls_blocking_handshake_server.py",
           fails=("tls.stalled-handshake[silent]", "tls.stalled-handshake[half-client-hello]"),
           passes=("tls.handshake", "tls.plaintext-client", "tls.certificate", "relay.basic[whole-frames]"),
           extra=("--tls",)),
    # Its handshake catches early leavers, not a plaintext client's SSLError.
    Judged("tls_plaintext_crash_server.py", fails=("tls.plaintext-client",),
           # tls.certificate runs after the crash: it passes only if the server was started afresh.
           passes=("tls.handshake", "tls.stalled-handshake[silent]",
                   "tls.stalled-handshake[half-client-hello]", "tls.certificate",
                   "relay.basic[whole-frames]"),
           crashes=("tls.plaintext-client",), extra=("--tls",)),
    Judged("line_server.py", fails=("relay.basic[whole-frames]",), dialect="newline-delimited lines",
           extra=("--no-preflight",)),
    Judged("lossy_server.py", fails=("relay.burst-order",), port_arg="--port {port}"),
    Judged("reordering_server.py", fails=("relay.burst-order",), port_arg="--port {port}"),
    # Broken implementations of the optional profiles (issue 17), judged as claimed (--profile):
    # each fails its own profile requirement and passes the profile's other cases.
    Judged("dm_leak_server.py", fails=("dm.not-leaked",),
           passes=("dm.delivered", "dm.unknown-recipient", "dm.order", "relay.basic[whole-frames]"),
           extra=("--profile", "dm")),
    Judged("dm_unknown_crash_server.py", fails=("dm.unknown-recipient",),
           # dm.order runs after the crash: it passes only if the server was started afresh.
           passes=("dm.delivered", "dm.not-leaked", "dm.order"),
           crashes=("dm.unknown-recipient",), extra=("--profile", "dm")),
    Judged("history_unmarked_server.py", fails=("history.marked",),
           passes=("history.replayed", "history.newcomer-only"), extra=("--profile", "history")),
    Judged("empty_message_drop_server.py", fails=(), passes=("relay.basic[whole-frames]",),
           non_strict=("frame.zero-length-message",), exit_status=0),
    Judged("empty_message_drop_server.py", fails=(), non_strict=("frame.zero-length-message",),
           extra=("--strict",), exit_status=1),
]


@dataclass
class Run:
    status: int
    output: str
    seconds: float
    doc: dict[str, Any] | None
    out: Path
    verdicts: dict[str, str] = field(default_factory=dict)


def run_suite(out: Path, *args: str) -> Run:
    """chat-conformance as a user runs it; the JSON results loaded and checked."""
    json_path = out / "results.json"
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "conformance.cli", "--json", str(json_path), *args],
                          capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=ROOT)
    seconds = time.monotonic() - started
    doc = load_document(json_path, kind="conformance") if json_path.exists() else None
    run = Run(proc.returncode, proc.stdout + proc.stderr, seconds, doc, out)
    if doc is not None:
        run.verdicts = {r["id"]: r["verdict"] for r in doc["records"]}
    return run


def server_cmd(name: str, port_arg: str = "{port}") -> str:
    return f"{sys.executable} {SERVERS / name} {port_arg}"


def _judged_id(judged: Judged) -> str:
    return f"{judged.server}-{JUDGED.index(judged)}"


def _jobs(out: Path) -> dict[str, tuple[str, ...]]:
    """Every run this module can need, by the ID of the test that needs it."""
    jobs = {_judged_id(j): ("--server-cmd", server_cmd(j.server, j.port_arg), *j.extra, *j.cases)
            for j in JUDGED}
    jobs["reference"] = ("--junitxml", str(out / "reference" / "junit.xml"))
    reference_with_profiles = f"{sys.executable} -m reference.server --port {{port}} --profile dm,history"
    jobs["profiles"] = ("--profile", "dm,history", "--server-cmd", reference_with_profiles)
    jobs["unclaimed"] = ("--server-cmd", reference_with_profiles)
    jobs["hanging"] = ("--server-cmd", server_cmd("hang_server.py"), "--no-preflight", "relay.no-echo",
                       "frame.over-limit", "robust.non-reader")
    return jobs


@pytest.fixture(scope="module")
def runs(request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future[Run]]]:
    """Start the runs that this session's selected tests need, a few at a time."""
    needed = set()
    for item in request.session.items:
        if getattr(item, "module", None) is request.module:
            callspec = getattr(item, "callspec", None)
            needed.add(callspec.id if callspec else item.name.removeprefix("test_").split("_")[0])
    out = tmp_path_factory.mktemp("conformance-runs")
    with ThreadPoolExecutor(PARALLEL_RUNS) as pool:
        yield {key: pool.submit(run_suite, out / key, *args)
               for key, args in _jobs(out).items() if key in needed}


@pytest.mark.parametrize("judged", JUDGED, ids=_judged_id)
def test_broken_server_fails_on_the_right_cases(runs: dict[str, Future[Run]], judged: Judged) -> None:
    run = runs[_judged_id(judged)].result(timeout=RUN_TIMEOUT)
    assert run.doc is not None, run.output[-3000:]
    expected = {**{c: "fail" for c in judged.fails}, **{c: "pass" for c in judged.passes},
                **{c: "non-strict" for c in judged.non_strict},
                **{f"crash[{c}]": "fail" for c in judged.crashes}}
    assert run.verdicts == expected, run.output[-4000:]
    assert run.status == judged.exit_status == run.doc["summary"]["exit_status"]
    dialects = run.doc["summary"]["dialects"]
    if judged.dialect:
        assert any(judged.dialect in d for d in dialects), dialects
        head = run.output.split("FAILURES")[0]
        assert judged.dialect in " ".join(head.split())  # said at the top, before the failures
    else:
        assert dialects == []
    for record in run.doc["records"]:
        if record["verdict"] == "fail":
            if record["id"].startswith("crash["):  # a death: what preceded it, the server's words
                assert "last action before it:" in record["detail"], record
            else:
                assert "expected:" in record["detail"] or "died" in record["detail"], record
            for phrase in judged.says:
                assert phrase in record["detail"], record["detail"]
                others = {" lost", " reordered", " duplicated", " mislabelled"} - {phrase} \
                    - set(judged.may_also_say)
                assert not any(other in record["detail"] for other in others), record["detail"]
            assert record["transcript"] and "client to server" in record["transcript"]
    if judged.server == "utf8_crash_server.py":
        restarts = run.doc["summary"]["restarts"]
        assert any("UnicodeDecodeError" in note for note in restarts) or any(
            "died during this case" in r["detail"] for r in run.doc["records"]), restarts


def test_reference_server_passes_everything(runs: dict[str, Future[Run]]) -> None:
    run = runs["reference"].result(timeout=RUN_TIMEOUT)
    assert run.status == 0, run.output[-4000:]
    assert run.doc is not None
    summary = run.doc["summary"]
    assert summary["total"] >= 50 and summary["fail"] == summary["error"] == summary["non-strict"] == 0
    assert set(run.verdicts.values()) == {"pass", "informational"}
    assert summary["pass"] + summary["informational"] == summary["total"] == len(run.doc["records"])
    assert summary["dialects"] == [] and summary["restarts"] == []
    for record in run.doc["records"]:  # every field reports/FORMAT.md names for a record
        assert {"id", "requirement", "requirement_text", "group", "level", "verdict", "duration_s",
                "detail", "transcript"} <= set(record)
        assert record["group"] == record["requirement"].split("-")[0]
        if record["verdict"] == "informational":
            assert record["level"] == "MAY" and record["detail"]
    print(f"conformance suite against the reference server: {run.seconds:.1f} s wall, "
          f"{summary['duration_s']:.1f} s in the suite")
    suite = ET.parse(run.out / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("name") == "chat-conformance"
    assert int(suite.get("tests", "0")) == summary["total"] and suite.get("failures") == "0"
    names = {p.get("value") for p in suite.iter("property") if p.get("name") == "case_id"}
    assert names == set(run.verdicts)
    # CI reporters show <testcase name>: the stable case ID, in its requirement group.
    cases = {c.get("name"): c.get("classname") for c in suite.iter("testcase")}
    groups = {r["id"]: r["group"] for r in run.doc["records"]}
    assert cases == groups


def test_profiles_judged_on_the_reference(runs: dict[str, Future[Run]]) -> None:
    """--profile dm,history: every profile case runs and passes on the reference serving them,
    JOIN-5 is skipped as replaced by the history profile, and the summary says what was claimed."""
    run = runs["profiles"].result(timeout=RUN_TIMEOUT)
    assert run.status == 0 and run.doc is not None, run.output[-4000:]
    records = {r["id"]: r for r in run.doc["records"]}
    profile_cases = {i: r["profile"] for i, r in records.items() if r["profile"]}
    assert {i.split(".")[0] for i in profile_cases} == {"dm", "history"} and len(profile_cases) >= 12
    assert {records[i]["verdict"] for i in profile_cases} == {"pass"}
    assert profile_cases["history.no-private"] == "dm,history"
    assert records["join.no-history"]["verdict"] == "skipped"
    assert "claims profile history" in records["join.no-history"]["detail"]
    assert set(run.verdicts.values()) == {"pass", "informational", "skipped"}
    assert run.doc["summary"]["profiles"] == {"claimed": ["dm", "history"], "not_claimed": {}}
    assert "Profiles claimed and judged: dm, history" in run.output


def test_unclaimed_history_fails_the_base_run(runs: dict[str, Future[Run]]) -> None:
    """The same server judged without --profile: its replay breaks JOIN-5 for base clients,
    the profile cases are not run, and the first root cause says to claim the profile."""
    run = runs["unclaimed"].result(timeout=RUN_TIMEOUT)
    assert run.status == 1 and run.doc is not None
    assert run.verdicts["join.no-history"] == "fail"
    assert not any(r["profile"] for r in run.doc["records"])
    assert run.doc["summary"]["profiles"]["claimed"] == []
    assert set(run.doc["summary"]["profiles"]["not_claimed"]) == {"dm", "history"}
    first = run.doc["diagnosis"][0]
    assert first["key"] == "unclaimed-history" and first["requirement"] == "JOIN-5"
    assert "join.no-history" in first["cases"]
    assert "Profiles not claimed, not judged" in run.output


def test_hanging_server_still_finishes_with_failures(runs: dict[str, Future[Run]]) -> None:
    """A server that accepts and then never answers, past the preflight (--no-preflight):
    every case fails on a timeout, none hangs."""
    run = runs["hanging"].result(timeout=RUN_TIMEOUT)
    assert run.status == 1 and run.doc is not None
    assert run.verdicts == {"relay.no-echo": "fail", "frame.over-limit": "fail", "robust.non-reader": "fail"}
    assert all(r["duration_s"] < 30 for r in run.doc["records"])  # far below the 60 s backstop


def test_expectations_turn_known_failures_into_xfail(tmp_path: Path) -> None:
    known = tmp_path / "known.toml"
    known.write_text('[[expected-failure]]\ncase = "frame.invalid-utf8[*]"\nreason = "dies on bad bytes"\n'
                     '[[expected-failure]]\ncase = "relay.no-echo"\nreason = "listed by mistake"\n')
    run = run_suite(tmp_path / "run", "--server-cmd", server_cmd("utf8_crash_server.py"),
                    "--expectations", str(known), "frame.invalid-utf8[message]", "relay.no-echo")
    # The crash it causes is part of the known failure: expected too.
    assert run.verdicts == {"frame.invalid-utf8[message]": "xfail", "relay.no-echo": "xpass",
                            "crash[frame.invalid-utf8[message]]": "xfail"}
    assert run.status == 0, run.output[-3000:]
    assert "XPASS" in run.output or "xpass" in run.output


def _processes_with(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker.encode() in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


@pytest.mark.skipif(sys.platform != "linux", reason="sends POSIX signals and finds the server's "
                    "processes in /proc (Linux only)")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_run_stops_the_server_it_started(tmp_path: Path, sig: signal.Signals) -> None:
    marker = f"conformance-interrupt-{sig.name}-{os.getpid()}"
    command = f"{sys.executable} {SERVERS / 'hang_server.py'} {marker} {{port}}"
    proc = subprocess.Popen([sys.executable, "-m", "conformance.cli", "--server-cmd", command],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            # a shell's background job ignores SIGINT; a terminal's Ctrl-C does not
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        # The command is started twice: once to check it works, then for the cases.
        seen: set[int] = set()
        deadline = time.monotonic() + 30
        while len(seen) < 2 and time.monotonic() < deadline:
            seen.update(pid for pid in _processes_with(marker) if pid != proc.pid)
            time.sleep(0.05)
        assert len(seen) == 2, f"server processes seen: {seen}"
        time.sleep(1.0)  # into the cases
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == 128 + sig  # 130 after Ctrl-C, 143 after SIGTERM
        deadline = time.monotonic() + 5
        while _processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _processes_with(marker) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_external_server_that_dies_stops_the_run_and_says_so(tmp_path: Path) -> None:
    server = SpawnedServer(server_cmd("utf8_crash_server.py"))
    server.start()
    try:
        host, port = server.address
        run = run_suite(tmp_path / "run", "--server", f"{host}:{port}",
                        "frame.invalid-utf8[message]", "relay.no-echo")
    finally:
        server.stop()
    assert run.status == 1 and run.doc is not None
    assert run.verdicts == {"frame.invalid-utf8[message]": "fail",  # relay.no-echo never ran
                            "crash[frame.invalid-utf8[message]]": "fail"}
    assert "not started by this suite" in run.doc["summary"]["stopped"]
    assert f"the server at {host}:{port} died during this case" in json.dumps(run.doc["records"])
    assert "Stopped early" in run.output
