"""The scorecard's orchestration: one target, every step run and reported, failures shown not raised.

Small fake producers stand in for chat-conformance and chat-load here (they
take the same flags and write the same documents), so these tests check the
scorecard itself in seconds; test_reports_e2e.py runs the real tools.
"""

from __future__ import annotations

import io
import socket
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import reports.scorecard as scorecard_module
from reference.target import ExternalServer, TargetError, TargetSpec, find_free_port, open_target
from reports.cli import main
from reports.scorecard import ScorecardConfig, Step, default_steps, run_scorecard
from reports.scorecard_report import write_scorecard_report

TESTS_DIR = Path(__file__).resolve().parent

FAKE_PRODUCER = textwrap.dedent("""
    # Stand-in for chat-conformance / chat-load: same flags, same documents.
    import socket, sys, time
    sys.path.insert(0, {tests_dir!r})
    from test_reports_samples import conformance_doc, latency_doc, limits_doc
    from reports.results import write_document

    mode, args = sys.argv[1], sys.argv[2:]
    kind = args[0] if args[0] in ("latency", "limits") else "conformance"
    out = args[args.index("--json") + 1]
    host, port = args[args.index("--server") + 1].rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
        reachable = True
    except OSError:
        reachable = False
    print(f"fake {{kind}} running against {{host}}:{{port}}", flush=True)
    if mode == "crash":
        print("Traceback (most recent call last):\\nRuntimeError: boom", flush=True)
        sys.exit(2)
    if mode == "hang":
        time.sleep(60)
    if not reachable:
        print(f"target unavailable: nothing accepts connections on {{host}}:{{port}}", flush=True)
        sys.exit(3)
    doc = {{"conformance": lambda: conformance_doc(broken=mode == "fail"), "latency": latency_doc,
            "limits": limits_doc}}[kind]()
    if mode == "finding" and kind == "limits":  # chat-load limits: the server stopped relaying
        doc["summary"].update(cause="stopped-relaying", cause_detail="no probe got through",
                              ok=False, finding=True)
        write_document(out, dict(doc, reachable=reachable))
        sys.exit(1)
    write_document(out, dict(doc, reachable=reachable))
    sys.exit(1 if mode == "fail" else 0)
""")


@pytest.fixture
def fake(tmp_path: Path) -> Path:
    script = tmp_path / "fake_producer.py"
    script.write_text(FAKE_PRODUCER.format(tests_dir=str(TESTS_DIR)), encoding="utf-8")
    return script


def fake_tools(script: Path, conformance: str = "ok", load: str = "ok") -> dict[str, list[str] | None]:
    return {"chat-conformance": [sys.executable, str(script), conformance],
            "chat-load": [sys.executable, str(script), load]}


def small_config(tmp_path: Path, spec: TargetSpec | None = None) -> ScorecardConfig:
    return ScorecardConfig(spec=spec or TargetSpec(), out_dir=tmp_path / "card", sweep="2,5", duration_s=1,
                           limits_max=100, limits_step=50, conformance_timeout_s=60, latency_timeout_s=60,
                           limits_timeout_s=60)


def server_arg(doc: dict[str, Any]) -> str:
    return str(doc["argv"][doc["argv"].index("--server") + 1])


def accepting(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
        return True
    except OSError:
        return False


def recorded_report(run: scorecard_module.ScorecardRun) -> str:
    console = Console(file=io.StringIO(), width=100, record=True)
    write_scorecard_report(run, console)
    return (run.config.out_dir / "report.txt").read_text(encoding="utf-8")


@pytest.mark.slow
def test_every_step_runs_against_one_embedded_server_started_once(tmp_path: Path, fake: Path) -> None:
    config = small_config(tmp_path)
    run = run_scorecard(config, tools=fake_tools(fake))
    assert [o.status for o in run.outcomes] == ["ok", "ok", "ok"], [o.detail for o in run.outcomes]
    docs = run.documents
    assert [d["kind"] for d in docs] == ["conformance", "latency", "limits"]
    addresses = {server_arg(d) for d in docs}
    assert len(addresses) == 1 and all(d["reachable"] for d in docs)
    assert not accepting(addresses.pop()), "the scorecard must stop the server it started"
    assert run.exit_status == 0
    # the steps' own flags reach the producers
    latency_argv = docs[1]["argv"]
    assert latency_argv[latency_argv.index("--sweep") + 1] == "2,5"

    text = recorded_report(run)
    assert "every step ran and passed" in text and "PASS" in text and "held 750 clients" in text
    # verdicts and measurements first; the long list of passing cases last
    appendix = text.index("Conformance cases by requirement group")
    assert text.index("Requirement groups") < text.index("One-way delivery latency") < \
        text.index("Ramp steps") < appendix < text.index("relay.no-echo")
    html = (config.out_dir / "report.html").read_text(encoding="utf-8")
    assert html.count('<img alt="') == 3  # sweep + distribution (latency), ramp (limits)
    assert {p.name for p in config.out_dir.iterdir()} >= {"conformance.json", "latency.json", "limits.json",
                                                          "report.txt", "report.html", "logs"}


@pytest.mark.slow
def test_failing_crashing_and_hanging_steps_are_reported_not_raised(tmp_path: Path, fake: Path) -> None:
    config = small_config(tmp_path)
    steps = default_steps(config)
    tools = fake_tools(fake, conformance="fail", load="crash")
    tools["hang"] = [sys.executable, str(fake), "hang"]
    steps[2] = Step("limits", "Limits probe", "hang", ("limits",), "limits.json", timeout_s=3)
    run = run_scorecard(config, tools=tools, steps=steps)
    assert [o.status for o in run.outcomes] == ["failures", "error", "timeout"]
    assert run.outcomes[0].document is not None  # exit 1 with results: shown, not lost
    assert run.outcomes[2].duration_s < 30  # stopped at its 3 s timeout, not after its 60 s sleep
    assert run.exit_status == 1
    text = recorded_report(run)
    assert "FAIL" in text and "relay.basic[one-byte-per-send]" in text
    assert "RuntimeError: boom" in text and "exited with status 2" in text
    assert "stopped after 3 s without finishing" in text
    assert "some steps failed or found problems" in text


def test_a_missing_tool_is_reported(tmp_path: Path, fake: Path) -> None:
    tools = fake_tools(fake)
    tools["chat-conformance"] = None
    run = run_scorecard(small_config(tmp_path), tools=tools)
    assert [o.status for o in run.outcomes] == ["not-installed", "ok", "ok"]
    assert "chat-conformance is not installed" in recorded_report(run)


def test_a_server_that_dies_is_named_and_restarted_for_the_next_step(
        tmp_path: Path, fake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    handles = []
    real_open_target = scorecard_module.open_target

    @contextmanager
    def spying_open_target(spec: TargetSpec) -> Iterator[Any]:
        with real_open_target(spec) as handle:
            handles.append(handle)
            yield handle

    monkeypatch.setattr(scorecard_module, "open_target", spying_open_target)

    def kill_before_latency(step: Step) -> None:
        if step.name == "latency":
            handles[0].proc.kill()
            handles[0].proc.wait(10)

    run = run_scorecard(small_config(tmp_path), tools=fake_tools(fake), on_start=kill_before_latency)
    assert [o.status for o in run.outcomes] == ["ok", "target-unavailable", "ok"]
    note = run.outcomes[1].target_note
    assert "killed by signal 9" in note and "restarted it on" in note
    assert server_arg(run.outcomes[2].document or {}) != server_arg(run.outcomes[0].document or {})
    assert "target died during this step" in recorded_report(run)


def test_an_unreachable_external_server_stops_the_scorecard_at_once(tmp_path: Path, fake: Path) -> None:
    spec = TargetSpec.parse(server=f"127.0.0.1:{find_free_port()}", start_timeout=0.3)
    with pytest.raises(TargetError):
        run_scorecard(small_config(tmp_path, spec), tools=fake_tools(fake))


def test_cli_scorecard_exits_3_when_the_server_is_unavailable(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["scorecard", "--server", f"127.0.0.1:{find_free_port()}", "--start-timeout", "0.3",
                   "--out", str(tmp_path / "card")])
    assert status == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("chat-report scorecard: target unavailable:")


@pytest.mark.parametrize("argv, message", [
    (["--sweep", "2,x"], "--sweep '2,x' is not a comma-separated list"),
    (["--limits-max", "0"], "argument --limits-max: '0' must be greater than 0"),
    (["--server", "nonsense"], "is not HOST:PORT"),
    (["--server", "127.0.0.1:1", "--server-cmd", "x {port}"], "not both"),
])
def test_cli_scorecard_rejects_bad_options_with_one_line(
        argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["scorecard", *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_limits_finding_is_a_failed_step_not_a_green_ok(tmp_path: Path, fake: Path) -> None:
    config = small_config(tmp_path)
    steps = default_steps(config)[2:]
    run = run_scorecard(config, tools=fake_tools(fake, load="finding"), steps=steps)
    (outcome,) = run.outcomes
    assert outcome.status == "failures" and outcome.document is not None
    assert run.exit_status == 1
    text = recorded_report(run)
    assert "FINDING" in text and "stopped-relaying" in text
    assert "every step ran and passed" not in text


def test_a_tls_target_reaches_every_step_with_its_scheme_and_ca(tmp_path: Path) -> None:
    """Each step gets --server tls://HOST:PORT and the CA the embedded server printed."""
    with open_target(TargetSpec.parse(tls=True)) as handle:
        assert handle.tls is not None and handle.tls.ca
        args = scorecard_module._target_args(TargetSpec.parse(tls=True), handle)
        host, port = handle.address
        assert args == ["--server", f"tls://{host}:{port}", "--tls-ca", handle.tls.ca]
    command = TargetSpec.parse(command="myserver {port}", tls=True, tls_insecure=True)
    assert scorecard_module._target_args(command, None) == [
        "--server-cmd", "myserver {port}", "--start-timeout", "10", "--tls", "--tls-insecure"]
    plain = TargetSpec.parse(server="127.0.0.1:1")
    plain_args = scorecard_module._target_args(plain, ExternalServer(("127.0.0.1", 1)))
    assert plain_args == ["--server", "127.0.0.1:1"]
