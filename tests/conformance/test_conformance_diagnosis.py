"""The diagnosis and the report around it: root causes, consequences, evidence, true messages.

Records are built with the suite's own producers (``CaseFailure.detail``, the
plugin's "died during this case" line), so what the diagnosis reads is what
the suite writes.  The zoo-wide proof (every single-defect server diagnosed
as its own requirement) runs the real suite and lives in
test_conformance_zoo.py (slow).
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from rich.console import Console

from conformance.diagnosis import SECTIONS, TUTORIAL_SECTION, diagnose, recognise_program
from conformance.peer import CaseFailure
from conformance.requirements import REQUIREMENTS, Level
from conformance.verdicts import CaseInfo, judge
from reports.html import RecordedReport
from reports.render_conformance import conformance_renderables, conformance_summary
from reports.style import Folded

ROOT = Path(__file__).resolve().parents[2]


def record(case_id: str, requirement: str, expected: str = "x", got: str = "nothing within 2.5 s",
           verdict: str = "fail", died: str = "", transcript_lines: int = 10) -> dict[str, Any]:
    detail = CaseFailure(expected, got).detail
    if died:
        detail += f"\nthe server died during this case: server process exited with status 1; " \
                  f"last stderr line: {died}"
    transcript = "\n".join(["wire transcript: ...", "(sync note)"]
                           + [f"+  0.{n:03d}s  ana  >>  3 B  \"e{n}\"" for n in range(transcript_lines)])
    return {"id": case_id, "requirement": requirement, "verdict": verdict, "detail": detail,
            "transcript": transcript, "level": REQUIREMENTS[requirement].level.value}


def passed(case_id: str, requirement: str) -> dict[str, Any]:
    return {"id": case_id, "requirement": requirement, "verdict": "pass", "detail": "", "transcript": None}


BAD_BYTES_CRASH = ("UnicodeDecodeError: 'utf-8' codec can't decode byte 0xc3 in position 3: "
                   "invalid continuation byte")
JOIN_MISLABELLED = dict(expected='bea gets registered (a message from ana reaches it)',
                        got='a relay from "~sync:1": "~sync:2"')


def test_a_case_that_could_not_join_counts_under_the_relay_defect() -> None:
    records = [record("frame.canonical-headers", "FRAME-2", **JOIN_MISLABELLED),
               record("robust.slowloris[half-header]", "ROBUST-2", **JOIN_MISLABELLED),
               record("relay.basic[header-split-at-3]", "ROBUST-1", **JOIN_MISLABELLED),
               record("relay.sender-label", "RELAY-3", got='a relay from "bea": "this is ana"'),
               passed("relay.basic[whole-frames]", "RELAY-1")]
    causes = diagnose(records)
    assert [c.requirement for c in causes] == ["RELAY-3"]
    assert sorted(causes[0].entry()["cases"]) == sorted(r["id"] for r in records[:4])


def test_lost_relays_explain_the_timeouts_of_other_cases() -> None:
    records = [record("relay.burst-order", "RELAY-4", got="c0 got 40 lost; c1 got 20 lost"),
               record("frame.canonical-headers", "FRAME-2"),
               record("relay.basic[whole-frames]", "RELAY-1"),
               record("relay.basic[one-byte-per-send]", "ROBUST-1"),
               record("frame.bad-header[letters]", "FRAME-3", got="the connection still open after 3.0 s")]
    causes = diagnose(records)
    assert causes[0].requirement == "RELAY-4" and len(causes[0].failures) == 4
    assert [c.requirement for c in causes[1:]] == ["FRAME-3"]  # not a relay symptom: its own cause


def test_partial_reads_claim_split_frames_only_when_whole_frames_pass() -> None:
    split = record("relay.basic[header-split-at-4]", "ROBUST-1")
    assert diagnose([split, passed("relay.basic[whole-frames]", "RELAY-1")])[0].key == "partial-reads"
    both = diagnose([split, record("relay.basic[whole-frames]", "RELAY-1")])
    assert "partial-reads" not in [c.key for c in both]


def test_dialects_are_causes_and_come_first() -> None:
    dialect = "echo: the server also sends each message back to its sender (breaks RELAY-2)"
    records = [record(f"relay.basic[header-split-at-{n}]", "ROBUST-1") for n in range(1, 4)]
    records += [record("frame.bad-header[letters]", "FRAME-3", got="the connection still open after 3.0 s")]
    causes = diagnose(records, [dialect])
    assert causes[0].dialect and causes[0].requirement == "RELAY-2" and len(causes[0].failures) == 3
    assert causes[0].entry()["link"] == "PROTOCOL.md#6-known-dialects"


def test_crashes_are_told_apart_by_what_killed_the_server() -> None:
    bad_bytes = BAD_BYTES_CRASH
    split = "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xc3 in position 2: unexpected end of data"
    records = [record("frame.invalid-utf8[message]", "FRAME-4", got="the server closed bea's connection",
                      died=bad_bytes),
               record("robust.protocol-error-isolated[invalid-utf8-name]", "ROBUST-5",
                      got="the server closed bea's connection", died=bad_bytes),
               record("relay.basic[utf8-char-split]", "ROBUST-1", got="the send failed: Broken pipe",
                      died=split),
               passed("relay.basic[whole-frames]", "RELAY-1")]
    by_key = {c.key: c.entry()["cases"] for c in diagnose(records)}
    # ROBUST-5 is not a second cause: the FRAME-4 crash explains it.
    assert by_key == {"utf8-crash": ["frame.invalid-utf8[message]",
                                     "robust.protocol-error-isolated[invalid-utf8-name]"],
                      "partial-reads": ["relay.basic[utf8-char-split]"]}


def test_unknown_failures_become_causes_of_their_own_requirement_ranked_by_count() -> None:
    records = [record("relay.adjacent-frames", "RELAY-5", got='a relay from "ana": "x" of 3 characters'),
               record("robust.non-reader-bounded", "ROBUST-4", verdict="non-strict",
                      got="sloth could still read 30 MiB"),
               record("lifecycle.leave[reset]", "RELAY-6", got='a relay from "bea": "?"'),
               record("lifecycle.leave[clean-close]", "RELAY-6", got='a relay from "bea": "?"')]
    causes = diagnose(records)
    assert [c.requirement for c in causes] == ["RELAY-6", "RELAY-5", "ROBUST-4"]  # SHOULD last
    assert causes[0].key == "requirement:RELAY-6" and "RELAY-6" in causes[0].fix


def test_evidence_is_the_shortest_failing_case_and_a_few_wire_events() -> None:
    records = [record(f"robust.slowloris[{n}]", "ROBUST-2", transcript_lines=n) for n in (30, 5, 12)]
    evidence = diagnose(records)[0].entry()["evidence"]
    assert evidence["case"] == "robust.slowloris[5]"
    assert evidence["transcript"] == [f'+  0.{n:03d}s  ana  >>  3 B  "e{n}"' for n in range(5)]
    longest = diagnose([records[0]])[0].entry()["evidence"]["transcript"]
    assert longest == [f'+  0.{n:03d}s  ana  >>  3 B  "e{n}"' for n in range(24, 30)]  # the last six
    assert "expected:" in evidence["detail"] and "got:" in evidence["detail"]


def test_the_tutorial_fingerprint_is_recognised_and_nothing_less() -> None:
    crash = BAD_BYTES_CRASH
    tutorial = [record("relay.basic[header-split-at-1]", "ROBUST-1"),
                record("robust.slowloris[half-header]", "ROBUST-2"),
                record("robust.non-reader", "ROBUST-3"),
                record("frame.invalid-utf8[message]", "FRAME-4", got="closed", died=crash),
                passed("relay.basic[whole-frames]", "RELAY-1")]
    sentence = recognise_program(diagnose(tutorial))
    assert sentence is not None and sentence.startswith("This looks like the classic tutorial server")
    assert f"PROTOCOL.md#{TUTORIAL_SECTION}" in sentence and "partial reads (ROBUST-1)" in sentence
    assert recognise_program(diagnose(tutorial[:2] + tutorial[4:])) is None


def test_every_link_is_a_heading_of_protocol_md() -> None:
    headings = re.findall(r"^###? (.+)$", (ROOT / "PROTOCOL.md").read_text(), re.MULTILINE)
    anchors = {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}
    assert set(SECTIONS.values()) | {TUTORIAL_SECTION, "6-known-dialects"} <= anchors


def test_a_may_case_that_raises_is_a_finding_not_an_error() -> None:
    info = CaseInfo("info.largest-message", REQUIREMENTS["FRAME-5"], Level.MAY, "sizes")
    assert judge(info, held=False, server_fault=False) == "informational"
    assert judge(info, held=False, server_fault=True) == "informational"


def _text(renderable: Any, width: int = 120) -> str:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(renderable)
    return out.getvalue()


def test_strict_never_prints_pass_beside_exit_status_1() -> None:
    doc = {"summary": {"non-strict": 1, "pass": 3, "total": 4, "strict": True, "exit_status": 1},
           "records": []}
    assert _text(conformance_summary(doc)).startswith("FAIL: a SHOULD requirement is broken")
    doc["summary"].update(strict=False, exit_status=0)
    assert _text(conformance_summary(doc)).startswith("PASS")


def _doc(records: list[dict[str, Any]], dialects: list[str] | None = None) -> dict[str, Any]:
    causes = diagnose(records, dialects or [])
    return {"kind": "conformance", "target": {"label": "srv"}, "records": records,
            "summary": {"fail": len(records), "total": len(records), "exit_status": 1},
            "diagnosis": [c.entry() for c in causes]}


def test_report_leads_with_causes_then_one_line_per_case_and_escapes_server_bytes() -> None:
    records = [record("robust.slowloris[half-payload]", "ROBUST-2",
                      got='a relay from "m": "fina3         an\x1b[2J"'),
               record("robust.non-reader", "ROBUST-3"), passed("relay.basic[whole-frames]", "RELAY-1")]
    text = "".join(_text(r) for r in conformance_renderables(_doc(records)))
    assert text.index("Root causes") < text.index("help:") < text.index("Cases that did not pass")
    assert "\x1b[2J" not in text and "\\x1b[2J" in text
    assert "wire transcript" not in text  # folded away by default
    assert len(text.splitlines()) < 50
    full = conformance_renderables(_doc(records), transcripts=True)
    assert sum(isinstance(r, Folded) for r in full) == 2


def test_html_folds_transcripts_in_details() -> None:
    records = [record("robust.non-reader", "ROBUST-3")]
    report = RecordedReport(Console(record=True, width=100, file=io.StringIO()))
    report.add(conformance_renderables(_doc(records), transcripts=True))
    page = report.html()
    assert page.index("Root causes") < page.index("<details") and "<summary>" in page
    assert "robust.non-reader" in report.text()


def test_a_relay_labelled_with_the_receivers_name_is_an_echo_only_if_it_is_its_own_message() -> None:
    echoed = record("relay.no-echo", "RELAY-2", expected='ana receives a relay from "bea": "for ana only"',
                    got='a relay from "ana": "for bea only"')
    assert diagnose([echoed])[0].key == "echo"
    mislabelled = record("relay.no-echo", "RELAY-2",
                         expected='bea gets registered: it receives a relay from "ana": "~sync:2"',
                         got='a relay from "bea": "~sync:2"')
    assert diagnose([mislabelled])[0].key == "mislabelled"


def test_one_unknown_way_of_dying_is_one_cause() -> None:
    records = [record(case, requirement, got="the server closed bea's connection", died="KeyError: 8")
               for case, requirement in (("relay.no-echo", "RELAY-2"), ("relay.sender-label", "RELAY-3"),
                                         ("relay.adjacent-frames", "RELAY-5"),
                                         ("robust.reset-any-moment", "ROBUST-6"))]
    causes = diagnose(records)
    # Each case checks another requirement: the tie goes to PROTOCOL.md's order.
    assert [(c.key, c.requirement, len(c.failures)) for c in causes] == [("crash:KeyError", "RELAY-2", 4)]
    assert "KeyError: 8" in causes[0].explanation


def test_a_deaths_own_record_counts_under_the_cause_of_its_case() -> None:
    died = record("frame.invalid-utf8[message]", "FRAME-4", got="the server closed bea's connection",
                  died=BAD_BYTES_CRASH)
    death = {"id": "crash[frame.invalid-utf8[message]]", "requirement": "ROBUST-7", "verdict": "fail",
             "detail": "the server process exited with status 1\nthe server's last stderr lines:\n"
                       f"  {BAD_BYTES_CRASH}", "transcript": None}
    causes = diagnose([died, death])
    assert [(c.key, sorted(f.id for f in c.failures)) for c in causes] == [
        ("utf8-crash", ["crash[frame.invalid-utf8[message]]", "frame.invalid-utf8[message]"])]


def test_a_run_the_preflight_stopped_has_the_preflight_as_its_one_cause() -> None:
    from conformance.diagnosis import preflight_cause
    silent = {"class": "silent", "stopped": True, "headline": "the server accepts connections but never "
              "relays anything", "evidence": "nothing in 3 s", "steps": ["two clients joined"]}
    entry = preflight_cause(silent)
    assert entry is not None and entry["requirement"] == "RELAY-1" and entry["cases"] == []
    assert entry["explanation"].startswith("the server accepts connections")
    assert preflight_cause({**silent, "stopped": False}) is None


def test_a_message_cut_in_step_is_truncation_not_a_partial_read() -> None:
    cut = record("frame.large-message", "FRAME-5", expected="bea receives ana's 1048576-byte message intact",
                 got="the message cut to its first 65536 bytes, in a frame of its own, then the next "
                     "message in step: the server truncated it")
    partial = record("frame.large-message", "FRAME-5", expected="bea receives ana's 1048576-byte message "
                     "intact", got="a relay from 'ana' of 65536 bytes, differing from the original at "
                                   "character 63812")
    whole = passed("relay.basic[whole-frames]", "ROBUST-1")
    assert [(c.requirement, c.key) for c in diagnose([cut, whole])] == [("RELAY-1", "truncation")]
    assert [(c.requirement, c.key) for c in diagnose([partial, whole])] == [("ROBUST-1", "partial-reads")]


def test_history_replay_explains_the_stale_relays_of_other_cases() -> None:
    stale = dict(got='a relay from "ana": "said before newt came 2"')
    records = [record("frame.utf8-byte-counts", "FRAME-1", **stale),
               record("relay.sender-label", "RELAY-3", **stale),
               record("join.empty-name", "JOIN-2", **stale),
               record("join.no-history", "JOIN-5", **stale)]
    causes = diagnose(records)
    assert [c.requirement for c in causes] == ["JOIN-5"]
    assert sorted(causes[0].entry()["cases"]) == sorted(r["id"] for r in records)
    # Without join.no-history's evidence, a stale relay is not blamed on history.
    assert "JOIN-5" not in [c.requirement for c in diagnose(records[:3])]


def test_a_death_seen_after_the_case_lends_its_last_words_to_the_case() -> None:
    reset = "ConnectionResetError: [Errno 104] Connection reset by peer"
    case = record("robust.reset-any-moment", "ROBUST-6", expected="the server reads 2000 messages from ana",
                  got="the send failed: Broken pipe")
    death = {"id": "crash[robust.reset-any-moment]", "requirement": "ROBUST-7", "verdict": "fail",
             "level": "MUST", "transcript": "",
             "detail": "the server process exited with status 1 at the end of robust.reset-any-moment\n"
                       "last action before it: rita0: client reset the connection (RST)\n"
                       f"the server's last stderr lines:\n  {reset}"}
    causes = diagnose([case, death])
    assert [(c.requirement, c.key) for c in causes] == [("ROBUST-6", "reset-crash")]
    assert sorted(causes[0].entry()["cases"]) == ["crash[robust.reset-any-moment]", "robust.reset-any-moment"]


def test_stale_relays_at_a_join_are_history_not_mislabelling() -> None:
    at_join = dict(expected="lis9 gets registered: its first message \"~sync:9\" reaches ana",
                   got='a relay from "ana": "said before newt came 2"')
    records = [record("relay.big-room", "RELAY-8", **at_join),
               record("join.no-history", "JOIN-5", got='a relay from "ana": "said before newt came 0"')]
    assert [c.requirement for c in diagnose(records)] == ["JOIN-5"]
    # Without the history case's evidence, the same relay at a join is a mislabelled one.
    assert [c.requirement for c in diagnose(records[:1])] == ["RELAY-3"]


def test_a_room_that_works_small_but_not_big_is_a_capped_fan_out() -> None:
    at_join = dict(expected="lis9 gets registered: its first message \"~sync:9\" reaches ana")
    records = [record("relay.big-room", "RELAY-8", **at_join),
               passed("relay.basic[whole-frames]", "ROBUST-1")]
    assert [(c.requirement, c.key) for c in diagnose(records)] == [("RELAY-8", "capped-fanout")]
    # When even the basic exchange fails, the newcomers' silence is the general join defect.
    broken = [records[0], record("relay.basic[whole-frames]", "ROBUST-1", **at_join)]
    assert "capped-fanout" not in [c.key for c in diagnose(broken)]


def test_a_room_frozen_by_the_connection_burst_is_blocking_reads_a_death_in_it_is_not() -> None:
    # The tutorial: blocks reading a silent burst connection's name while the room chats.
    frozen = record("robust.connection-burst", "ROBUST-6",
                    expected='bea receives a relay from "ana": "while the burst comes in 0"')
    assert [(c.requirement, c.key) for c in diagnose([frozen])] == [("ROBUST-2", "blocking-reads")]
    # A server that dies when the burst leaves breaks ROBUST-6 itself.
    died = record("robust.connection-burst", "ROBUST-6", got="the server closed ana's connection",
                  expected='ana receives relay 2 of 49: a relay from "bea": "wave 1 of 5: while the '
                           'burst leaves 2"', died="ValueError: list.remove(x): x not in list")
    assert "blocking-reads" not in [c.key for c in diagnose([died])]
