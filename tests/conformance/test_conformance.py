"""Unit tests of the conformance suite's parts: requirements, selection, verdicts, wire, preflight, CLI.

The suite's judgement of real servers is tested in test_conformance_servers.py;
here each building block is checked on its own, quickly.
"""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conformance.cases import (
    test_framing,
    test_informational,
    test_join,
    test_lifecycle,
    test_profiles,
    test_relay,
    test_robustness,
    test_room,
    test_tls,
)
from conformance.cli import build_parser, main, pytest_args
from conformance.corpus import NAMES, PAYLOADS, sizes_to_probe
from conformance.options import SuiteSettings
from conformance.peer import CaseFailure, Room, Timeouts
from conformance.preflight import detect, parse_frames
from conformance.requirements import REQUIREMENTS, Level, Marker, case
from conformance.scenarios import CUTS, first_non_canonical
from conformance.selection import ExpectationsError, load_expectations, matches, matching
from conformance.verdicts import CaseInfo, exit_status, judge
from conformance.wire import HEAD_EVENTS, TAIL_EVENTS, Wire, printable
from reference.process_group import join_command
from reference.protocol import MIN_MAX_PAYLOAD, encode_frame
from reference.target import TargetSpec, open_target
from reports.results import load_document

ROOT = Path(__file__).resolve().parents[2]
CASE_MODULES = [test_framing, test_informational, test_join, test_lifecycle, test_profiles, test_relay,
                test_robustness, test_room, test_tls]


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conformance.cli", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


# -- requirements and case IDs ---------------------------------------------------------
def test_requirements_match_protocol_md() -> None:
    spec = dict(re.findall(r"^\*\*([A-Z]+-\d+) \((MUST|SHOULD|MAY)\)\*\*", (ROOT / "PROTOCOL.md").read_text(),
                           re.MULTILINE))
    assert spec, "no requirement found in PROTOCOL.md"
    assert {rid: req.level.value for rid, req in REQUIREMENTS.items()} == spec


def _cases() -> list[tuple[str, object, pytest.Mark]]:
    found = []
    for module in CASE_MODULES:
        for name, function in inspect.getmembers(module, inspect.isfunction):
            marks = [m for m in getattr(function, "pytestmark", []) if m.name == Marker.CASE.marker_name]
            if name.startswith("test_"):
                assert marks, f"{module.__name__}.{name} has no @case(...)"
                found.append((name, function, marks[0]))
    return found


def test_every_case_docstring_cites_its_requirement() -> None:
    cases = _cases()
    assert len(cases) >= 25
    for name, function, mark in cases:
        requirement = mark.args[1]
        first_line = (function.__doc__ or "").strip().splitlines()[0]
        assert first_line.startswith(f"{requirement}:"), f"{name}: {first_line!r} does not cite {requirement}"


def test_case_ids_are_listed_unique_and_stable() -> None:
    result = run_cli("--list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert re.fullmatch(r"\d+ cases", lines[-1])
    levels, requirement_of = {}, {}
    # The optional profiles' cases are listed only when claimed (--profile); the count says so.
    assert lines[-2].startswith("not listed: ") and "cases of profile dm" in lines[-2]
    for line in lines[:-2]:
        heading = re.match(r"([A-Z]+-\d+) \((MUST|SHOULD|MAY)\) (.+)", line)
        if heading:
            requirement, level, text = heading.groups()
            assert text == REQUIREMENTS[requirement].text
            continue
        case_id = line.split()[0]
        assert line.startswith("  ") and case_id not in levels, line
        levels[case_id] = "MAY" if line.endswith("[MAY]") else level
        requirement_of[case_id] = requirement
    assert len(levels) == int(lines[-1].split()[0])
    for case_id in levels:
        assert re.fullmatch(r"[a-z]+\.[a-z0-9-]+(\[[a-z0-9-]+\])?", case_id), case_id
    # IDs other tools and documents rely on (reports/FORMAT.md uses the first).
    for known in ("relay.basic[one-byte-per-send]", "relay.basic[whole-frames]", "relay.no-echo",
                  "frame.large-message", "robust.non-reader", "frame.invalid-utf8[message]"):
        assert known in levels
    whole = "relay.basic[whole-frames]"
    assert (requirement_of[whole], levels[whole]) == ("RELAY-1", "MUST")
    assert requirement_of["relay.basic[one-byte-per-send]"] == "ROBUST-1"
    assert levels["frame.zero-length-message"] == "SHOULD"
    assert levels["info.lenient-headers[zero-padded]"] == "MAY"
    assert (requirement_of["info.largest-message"], levels["info.largest-message"]) == ("FRAME-5", "MAY")


# -- selection and expectations -------------------------------------------------------------
def test_patterns_take_brackets_literally() -> None:
    assert matches("relay.basic[*]", "relay.basic[one-byte-per-send]")
    assert matches("relay.basic[one-byte-per-send]", "relay.basic[one-byte-per-send]")
    assert not matches("relay.basic[o]", "relay.basic[one-byte-per-send]")
    assert matches("frame.*", "frame.bad-header[plus-sign]")
    assert not matches("frame.*", "relay.no-echo")
    assert matches("relay.basic[header-split-at-?]", "relay.basic[header-split-at-7]")
    assert matching(["nope", "relay.*"], "relay.no-echo") == "relay.*"
    assert matching(["nope"], "relay.no-echo") is None


def test_expectations_file(tmp_path: Path) -> None:
    path = tmp_path / "known.toml"
    path.write_text('[[expected-failure]]\ncase = "relay.basic[*]"\nreason = "recv(10)"\n')
    (entry,) = load_expectations(path)
    assert (entry.case, entry.reason) == ("relay.basic[*]", "recv(10)")


@pytest.mark.parametrize("text, complaint", [
    ("[[expected-failure]]\ncase = 'x'\n", "'reason' must say why"),
    ("[[expected-failure]]\nreason = 'x'\n", "'case' must be a case ID"),
    ("[[expected-failure]]\ncase = 'x'\nreason = 'y'\nstrict = true\n", "unknown key 'strict'"),
    ("[[xfail]]\ncase = 'x'\nreason = 'y'\n", "unknown table 'xfail'"),
    ("expected-failure = 3\n", "must be an array of tables"),
    ("[[expected-failure]\n", "not valid TOML"),
])
def test_bad_expectations_are_one_line(tmp_path: Path, text: str, complaint: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ExpectationsError) as info:
        load_expectations(path)
    assert complaint in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ExpectationsError, match="no such file"):
        load_expectations(tmp_path / "missing.toml")


# -- verdicts ---------------------------------------------------------------------------------
def _info(level: Level, expected: bool = False) -> CaseInfo:
    from conformance.selection import Expectation
    return CaseInfo("x.y", REQUIREMENTS["RELAY-1"], level, "t",
                    Expectation("x.y", "known") if expected else None)


@pytest.mark.parametrize("level, held, fault, expected, verdict", [
    (Level.MUST, True, True, False, "pass"),
    (Level.MUST, False, True, False, "fail"),
    (Level.SHOULD, False, True, False, "non-strict"),
    (Level.SHOULD, True, True, False, "pass"),
    (Level.MAY, True, True, False, "informational"),
    (Level.MAY, False, True, False, "informational"),
    (Level.MUST, False, False, False, "error"),
    (Level.MUST, False, True, True, "xfail"),
    (Level.MUST, True, True, True, "xpass"),
])
def test_judge(level: Level, held: bool, fault: bool, expected: bool, verdict: str) -> None:
    assert judge(_info(level, expected), held=held, server_fault=fault) == verdict


def test_exit_status_counts_should_only_when_strict() -> None:
    assert exit_status(["pass", "non-strict", "xfail", "xpass", "informational"], strict=False) == 0
    assert exit_status(["pass", "non-strict"], strict=True) == 1
    assert exit_status(["pass", "fail"], strict=False) == 1
    assert exit_status(["error"], strict=False) == 1


# -- the wire transcript ------------------------------------------------------------------------
def test_transcript_is_capped_and_readable() -> None:
    ticks = iter(range(10_000))
    wire = Wire(clock=lambda: next(ticks) / 1000)
    wire.note("ana", "connected")
    for number in range(200):
        wire.record("ana", ">>", encode_frame(f"message {number} é\n".encode() * 20))
    text = wire.render()
    assert f"{201 - HEAD_EVENTS - TAIL_EVENTS} events left out" in text
    assert "ana  >>  " in text and "(first 32 shown)" in text
    assert "message 0 é\\n" in text and "message 199" in text and "message 100 " not in text
    hex_lines = [line for line in text.splitlines() if re.fullmatch(r"\s+([0-9a-f]{2} ?)+", line)]
    assert hex_lines and all(len(line.split()) <= 16 for line in hex_lines)
    assert printable(b"\x00ok\xff") == "\\x00ok\\xff"
    assert Wire().render() == ""


# -- dialects and stream checks ----------------------------------------------------------------
def test_dialect_detection_in_plain_words() -> None:
    normal = encode_frame(b"probe-sender") + encode_frame(b"dialect probe 0")
    assert detect(normal, b"") == []
    single = encode_frame(b"probe-sender> dialect probe 0")
    assert [d.split(":")[0] for d in detect(single, b"")] == ["single-frame relay"]
    assert [d.split(":")[0] for d in detect(normal, normal)] == ["echo"]
    narrow = b"12      probe-sender15      dialect probe 0"
    (width,) = detect(narrow, b"")
    assert width.startswith("other header width") and "8-byte" in width
    assert parse_frames(narrow, 8) == [b"probe-sender", b"dialect probe 0"]
    assert parse_frames(narrow, 10) is None


def test_first_non_canonical_header() -> None:
    assert first_non_canonical(encode_frame(b"ana") + encode_frame(b"hello")) is None
    stream = encode_frame(b"ana") + b"         5hello"
    assert first_non_canonical(stream) == (13, b"         5")


@pytest.mark.parametrize("cut", list(CUTS))
def test_cuts_keep_the_bytes(cut: str) -> None:
    frames = [encode_frame("zoé".encode()), encode_frame("café".encode()), encode_frame(b"x")]
    pieces = CUTS[cut](frames)
    assert b"".join(pieces) == b"".join(frames)
    if cut.startswith("header-split-at-"):
        assert len(pieces[0]) == int(cut.rsplit("-", 1)[1])
    if cut == "utf8-char-split":
        assert any(piece and 0x80 <= piece[0] < 0xC0 for piece in pieces)  # starts mid-character


# -- the room against the reference server ------------------------------------------------------
def test_room_confirms_registration_and_explains_failures() -> None:
    with open_target(TargetSpec()) as target:
        wire = Wire()
        room = Room(target.address, wire, Timeouts(arrive=2.0))
        try:
            ana, bea = room.join_all("ana", "bea")
            ana.send("hi")
            bea.expect_relay("ana", "hi")
            ana.send("something else")
            with pytest.raises(CaseFailure) as info:
                bea.expect_relay("ana", "what was wanted")
            assert 'expected: bea receives a relay from "ana": "what was wanted"' in info.value.detail
            assert 'got: a relay from "ana": "something else"' in info.value.detail
            with pytest.raises(CaseFailure, match="nothing within 0.2 s"):
                bea.next_relay("more", timeout=0.2)
        finally:
            room.close()
        assert "~sync:1" in wire.render() and "client closed the connection (FIN)" in wire.render()


# -- command-line usage --------------------------------------------------------------------------
@pytest.mark.parametrize("args, complaint", [
    (["--server", "nowhere"], "is not HOST:PORT"),
    (["--server", "127.0.0.1:1", "--server-cmd", "x"], "not both"),
    (["--timeout", "-1"], "is not between 0 and 3600"),
    (["--json", "."], "is a directory"),
    (["--patience", "0"], "is not between 0 and 3600"),
    (["--room-size", "1"], "is not between 2 and 500 listeners"),
    (["--room-size", "many"], "is not a whole number of listeners"),
])
def test_bad_usage_is_one_line_and_exit_2(args: list[str], complaint: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    # In this process: each is refused while parsing, before anything starts (a fresh
    # interpreter's usage error is test_conventions.py's, for every tool).
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    assert complaint in capsys.readouterr().err.strip().splitlines()[-1]


def test_unknown_case_and_bad_expectations_exit_2(tmp_path: Path) -> None:
    result = run_cli("no.such-case", "--list")
    assert result.returncode == 2 and "no case matches 'no.such-case'" in result.stdout + result.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[[expected-failure]]\ncase = 'x'\n")
    result = run_cli("--expectations", str(bad), "--list")
    assert result.returncode == 2 and "'reason' must say why" in result.stdout + result.stderr


@pytest.mark.slow
def test_dead_target_exits_3_with_one_clear_line(tmp_path: Path) -> None:
    from reference.target import find_free_port
    port = find_free_port()  # nothing listens there
    result = run_cli("--server", f"127.0.0.1:{port}", "--json", str(tmp_path / "r.json"))
    assert result.returncode == 3 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert f"nothing accepted connections on 127.0.0.1:{port}" in line
    summary = load_document(tmp_path / "r.json", kind="conformance")["summary"]
    assert summary["exit_status"] == 3 and summary["total"] == 0 and summary["target_error"] in line
    result = run_cli("--server-cmd", join_command([sys.executable, "-c", "raise SystemExit(7)"]) + " {port}")
    assert result.returncode == 3 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert "exited with status 7" in line


def test_junit_testcases_are_the_selected_case_ids_in_their_group(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    result = run_cli("relay.no-echo", "--junitxml", str(junit))
    assert result.returncode == 0, result.stdout[-2000:]
    cases = [(c.get("name"), c.get("classname")) for c in ET.parse(junit).getroot().iter("testcase")]
    assert cases == [("relay.no-echo", "RELAY")]  # deselected cases leave no empty <testcase>


def test_patience_and_room_size_reach_the_suite() -> None:
    args = build_parser().parse_args(["--patience", "65", "--room-size", "64"])
    argv = pytest_args(args)
    assert argv[argv.index("--chat-patience") + 1] == "65.0"
    assert argv[argv.index("--chat-room-size") + 1] == "64"
    values = {"chat_patience": 65.0, "chat_room_size": 64, "chat_case_timeout": 60.0,
              "chat_timeout": 2.5, "chat_strict": False, "chat_json": None,
              "chat_expectations": None, "chat_list": False, "chat_case": [],
              "chat_no_preflight": False, "chat_transcripts": False, "chat_profile": frozenset()}
    settings = SuiteSettings.from_options(values.__getitem__)
    assert (settings.patience, settings.room_size) == (65.0, 64)
    assert settings.case_timeout == 95.0  # the backstop leaves the patient reader its time
    assert settings.profiles == frozenset() and "--chat-profile" not in argv


def test_profiles_reach_the_suite_and_a_bad_one_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    argv = pytest_args(build_parser().parse_args(["--profile", "history,dm"]))
    assert argv[argv.index("--chat-profile") + 1] == "dm,history"
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["--profile", "dm,emoji"])
    assert exc.value.code == 2
    assert "unknown profile 'emoji'; known profiles: dm, history" in capsys.readouterr().err


def test_profile_cases_are_tagged_and_join5_is_waived_by_history() -> None:
    from conformance.requirements import case_profiles
    assert REQUIREMENTS["DM-2"].profile == "dm" and REQUIREMENTS["HISTORY-1"].profile == "history"
    assert REQUIREMENTS["PROFILE-1"].profile is None and REQUIREMENTS["RELAY-1"].profile is None
    assert REQUIREMENTS["JOIN-5"].waived_by == "history"
    assert case_profiles(REQUIREMENTS["DM-1"], None) == ("dm",)
    assert case_profiles(REQUIREMENTS["HISTORY-4"], ("dm", "history")) == ("dm", "history")
    with pytest.raises(ValueError, match="must name its profile"):
        case("x.reserved", "PROFILE-1")
    with pytest.raises(ValueError, match="unknown profile"):
        case("x.y", "DM-1", profile="emoji")


def test_corpus_is_untidy_valid_utf8_with_exact_sizes() -> None:
    assert {"trailing-spaces", "crlf", "nul-byte", "esc-sequence", "four-byte-utf8",
            "combining-marks", "right-to-left", "looks-like-a-header", "other-dialect",
            "one-byte", "exactly-1-mib"} <= set(PAYLOADS)
    assert PAYLOADS["looks-like-a-header"] == "5         " and PAYLOADS["other-dialect"] == "bob> hi"
    assert len(PAYLOADS["exactly-1-mib"].encode()) == MIN_MAX_PAYLOAD
    assert len(PAYLOADS["one-byte"].encode()) == 1
    assert any(len(c.encode()) == 4 for c in PAYLOADS["four-byte-utf8"])
    assert any(" " in name for name in NAMES.values())
    assert sum(text != text.strip() for text in [*PAYLOADS.values(), *NAMES.values()]) >= 8
    assert sizes_to_probe() == [MIN_MAX_PAYLOAD * 2**k for k in range(5)]


def test_an_installed_package_gives_no_assert_rewrite_warning() -> None:
    """chat-conformance imports its own packages before pytest marks them for rewriting.

    Seen only with a regular (non-editable) install, where pytest lists the distribution's
    modules; checked by hand with `pip install .` in a fresh venv (0 warnings, was 3).
    """
    argv = pytest_args(build_parser().parse_args([]))
    assert argv[argv.index("-W") + 1] == "ignore::pytest.PytestAssertRewriteWarning"
