"""The TLS profile (PROTOCOL.md, "Profile: tls") judged as a user runs it.

TLS cases run only on a TLS target (``--tls`` or ``--server tls://...``);
there every base case runs inside TLS too.  The stalled-handshake case must
catch tests/servers/tls_blocking_handshake_server.py every time, the plaintext
case tests/servers/tls_plaintext_crash_server.py, and the certificate check
tests/servers/tls_wrong_name_cert_server.py (a certificate that does not verify
stops the run before any case: exit status 3 and one line), and all of them pass
the reference every time (five runs each: verdicts must be reproducible).

The runs mostly wait on the suite's handshake timeouts, so, as in
test_conformance_servers.py, they are started together, a few at a time, when
the module's first test needs them: the repeats are also judged side by side.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
import trustme
from test_conformance_servers import PARALLEL_RUNS, ROOT, RUN_TIMEOUT, SERVERS, Run, run_suite

from reference.target import TargetSpec, open_target

pytestmark = pytest.mark.slow  # subprocesses and real servers

TLS_CASES = {"tls.handshake", "tls.corpus", "tls.stalled-handshake[silent]",
             "tls.stalled-handshake[half-client-hello]", "tls.plaintext-client", "tls.certificate"}
BROKEN = f"{sys.executable} {SERVERS / 'tls_blocking_handshake_server.py'} {{port}}"
PLAINTEXT_CRASH = f"{sys.executable} {SERVERS / 'tls_plaintext_crash_server.py'} {{port}}"
WRONG_NAME = f"{sys.executable} {SERVERS / 'tls_wrong_name_cert_server.py'} {{port}}"
STALLED = ("tls.stalled-handshake[silent]", "tls.stalled-handshake[half-client-hello]")

#: The chat-conformance arguments of each test that judges one run (the longest first).
JOBS: dict[str, tuple[str, ...]] = {
    "test_the_whole_suite_passes_inside_tls_on_the_reference": ("--tls",),
    "test_stalled_handshake_catches_the_blocking_server_every_time": ("--tls", "--server-cmd", BROKEN,
                                                                      "tls.*"),
    "test_stalled_handshake_passes_the_reference_every_time": ("--tls", "tls.*"),
    "test_plaintext_client_catches_the_crashing_server_every_time": ("--tls", "--server-cmd",
                                                                     PLAINTEXT_CRASH, "tls.*"),
    "test_certificate_for_another_name_stops_the_run_in_one_line": ("--tls", "--server-cmd", WRONG_NAME,
                                                                    "tls.*"),
}


@pytest.fixture(scope="module")
def runs(request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future[Run]]]:
    """The runs of this session's selected tests of JOBS, started together, a few at a time."""
    items = [item for item in request.session.items if getattr(item, "module", None) is request.module
             and getattr(item, "originalname", "") in JOBS]
    out = tmp_path_factory.mktemp("tls-runs")
    with ThreadPoolExecutor(PARALLEL_RUNS) as pool:
        yield {item.nodeid: pool.submit(run_suite, out / str(number),
                                        *JOBS[item.originalname])  # type: ignore[attr-defined]
               for number, item in enumerate(items)}


@pytest.fixture
def run(request: pytest.FixtureRequest, runs: dict[str, Future[Run]]) -> Run:
    """This test's run of its JOBS arguments."""
    return runs[request.node.nodeid].result(timeout=RUN_TIMEOUT)


def listed(*args: str) -> set[str]:
    proc = subprocess.run([sys.executable, "-m", "conformance.cli", "--list", *args],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    ids = {line.split()[0] for line in proc.stdout.splitlines() if line.startswith("  ")}
    assert "relay.no-echo" in ids  # the base cases are listed either way
    return {case for case in ids if case.startswith("tls.")}


def test_tls_cases_run_only_on_a_tls_target() -> None:
    assert listed() == set()
    assert listed("--tls") == TLS_CASES


def test_the_whole_suite_passes_inside_tls_on_the_reference(run: Run) -> None:
    assert run.status == 0, run.output[-3000:]
    assert TLS_CASES <= set(run.verdicts)
    assert len(run.verdicts) > len(TLS_CASES) + 50  # the base cases ran too, inside TLS
    assert set(run.verdicts.values()) <= {"pass", "informational"}


def test_a_certificate_that_does_not_verify_is_one_line(tmp_path: Path) -> None:
    with open_target(TargetSpec.parse(tls=True)) as server:
        host, port = server.address
        with trustme.CA().cert_pem.tempfile() as stranger:
            proc = subprocess.run([sys.executable, "-m", "conformance.cli", "--server",
                                   f"tls://{host}:{port}", "--tls-ca", stranger],
                                  capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 3
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"chat-conformance: target unavailable: tls://{host}:{port}: ")
    assert "certificate does not verify" in line and "Traceback" not in proc.stdout


@pytest.mark.parametrize("attempt", range(5))
def test_stalled_handshake_catches_the_blocking_server_every_time(run: Run, attempt: int) -> None:
    assert run.status == 1, run.output[-3000:]
    assert {case: run.verdicts[case] for case in STALLED} == dict.fromkeys(STALLED, "fail")
    assert {v for c, v in run.verdicts.items() if c not in STALLED} == {"pass"}


@pytest.mark.parametrize("attempt", range(5))
def test_stalled_handshake_passes_the_reference_every_time(run: Run, attempt: int) -> None:
    assert run.status == 0, run.output[-3000:]
    assert set(run.verdicts) == TLS_CASES and set(run.verdicts.values()) == {"pass"}


@pytest.mark.parametrize("attempt", range(5))
def test_plaintext_client_catches_the_crashing_server_every_time(run: Run, attempt: int) -> None:
    assert run.status == 1, run.output[-3000:]
    failed = {"tls.plaintext-client", "crash[tls.plaintext-client]"}
    assert {c for c, v in run.verdicts.items() if v != "pass"} == failed, run.verdicts
    assert set(run.verdicts) == TLS_CASES | failed  # the stalled cases too: only TLS-3 is broken
    assert run.doc is not None
    crash = next(r for r in run.doc["records"] if r["id"] == "crash[tls.plaintext-client]")
    assert "WRONG_VERSION_NUMBER" in crash["detail"] or "SSLError" in crash["detail"], crash["detail"]


@pytest.mark.parametrize("attempt", range(5))
def test_certificate_for_another_name_stops_the_run_in_one_line(run: Run, attempt: int) -> None:
    """The CA the server printed is used, and the certificate is for localhost only: the run
    stops before any case with exit status 3 and one line naming the mismatch."""
    assert run.status == 3, run.output[-3000:]
    (line,) = run.output.strip().splitlines()
    assert line.startswith("chat-conformance: target unavailable: tls://127.0.0.1:"), line
    assert ("the server's TLS certificate does not verify (IP address mismatch, certificate is "
            "not valid for '127.0.0.1'): it is not issued for the address used") in line, line
    assert run.doc is not None and run.doc["records"] == [] and run.doc["summary"]["exit_status"] == 3
    assert run.doc["summary"]["target_error"] in line
