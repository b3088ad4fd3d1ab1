"""No terminal injection: what a server sends is shown escaped by every renderer and writer.

A server under test controls relays, usernames, its stderr lines and so the
text of many results.  These tests push one hostile string -- an OSC 8 link,
a screen clear, a one-character C1 CSI, a bidi override, a carriage return, a
bell and rich markup ``[/]`` -- through :mod:`reference.printable`, every
``chat-report`` renderer, the results writer and the scorecard's step log, and
check that none of its control characters reaches the output while the
evidence stays visible, escaped.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from test_reports_samples import SAMPLES as GOOD_SAMPLES
from test_reports_samples import conformance_doc

from reference.printable import printable, printable_text, printable_tree
from reports.cli import main as report_main
from reports.results import write_document
from reports.scorecard import Step, run_step

HOSTILE = "\x1b]8;;http://evil/\x1b\\\x1b[2J\u009b31m\u202eevil[/]\r\x07 \u2066x\u2069"
#: Characters that must never reach a terminal or a report unescaped.
CONTROLS = ["\x1b", "\u009b", "\u202e", "\r", "\x07", "\u2066", "\u2069", "\u009d"]


def assert_inert(text: str) -> None:
    __tracebackhide__ = True
    for char in CONTROLS:
        assert char not in text, f"{char!r} reached the output"


def test_printable_text_escapes_c0_c1_bidi_and_keeps_the_evidence() -> None:
    """Each control is shown as an escape; plain and non-ASCII text is untouched."""
    shown = printable_text(HOSTILE)
    assert_inert(shown)
    assert shown == ("\\x1b]8;;http://evil/\\x1b\\\\\\x1b[2J\\x9b31m\\u202eevil[/]\\r\\x07 \\u2066x\\u2069")
    assert printable_text("Zoë 日本 🎉") == "Zoë 日本 🎉"
    assert printable_text("a\nb\tc", keep_newlines=True) == "a\nb\tc"
    assert printable_text("a\nb") == "a\\nb"
    assert printable_text("x" * 10, 4) == "xxxx..."
    assert printable_text("\ud800 lone") == "\\ud800 lone"  # encodable as UTF-8 afterwards
    assert printable(b"\x00ok\xff\x9b") == "\\x00ok\\xff\\x9b"


def test_printable_tree_is_idempotent_on_documents() -> None:
    """A document made printable twice is the same: reading what we wrote changes nothing."""
    doc = {"a": [HOSTILE, {"b\x1b": "line\nnext\\n"}], "n": 3, "none": None}
    once = printable_tree(doc)
    assert printable_tree(once) == once
    assert_inert(json.dumps(once, ensure_ascii=False))


def _poison(doc: dict[str, Any]) -> dict[str, Any]:
    """The document with the hostile string where a server's words end up."""
    doc = json.loads(json.dumps(doc))
    doc["target"]["label"] = f"python3 srv.py {HOSTILE}"
    doc["target"]["command"] = f"python3 srv.py {HOSTILE}"
    for record in doc.get("records", []):
        for key in ("detail", "transcript", "error", "cause_detail"):
            if key in record or key == "detail":
                record[key] = f"got {HOSTILE}"
    for key in ("error", "cause_detail", "target_error"):
        if isinstance(doc["summary"].get(key, ""), str):
            doc["summary"][key] = f"the server said {HOSTILE}"
    return doc


SAMPLES = {**GOOD_SAMPLES, "conformance": lambda: conformance_doc(broken=True)}


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_every_report_command_shows_hostile_text_escaped(kind: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """show, html and (conformance) matrix: no control character of the file reaches their output."""
    path = tmp_path / f"{kind}.json"
    path.write_text(json.dumps(_poison(SAMPLES[kind]()), ensure_ascii=False), encoding="utf-8")
    assert report_main(["show", str(path)]) == 0
    shown = capsys.readouterr().out
    assert_inert(shown)
    assert "\\x1b]8;;http://evil/" in shown or kind == "bench"
    assert report_main(["html", str(path), "-o", str(tmp_path / "r.html")]) == 0
    assert_inert((tmp_path / "r.html").read_text(encoding="utf-8"))
    if kind == "conformance":
        assert report_main(["matrix", str(path), "-o", str(tmp_path / "m.html")]) == 0
        assert_inert(capsys.readouterr().out)
        assert_inert((tmp_path / "m.html").read_text(encoding="utf-8"))
    if kind in ("latency", "bench"):
        assert report_main(["compare", str(path), str(path)]) == 0
        assert_inert(capsys.readouterr().out)


def test_results_files_hold_no_control_characters(tmp_path: Path) -> None:
    """write_document escapes what a producer forgot to; newlines of detail blocks stay."""
    out = write_document(tmp_path / "r.json", _poison(conformance_doc(broken=True)))
    text = out.read_text(encoding="utf-8")
    assert_inert(text)
    assert json.loads(text)["records"][0]["detail"].startswith("got \\x1b]8;;")
    assert not list(tmp_path.glob("*.tmp"))  # the atomic write left nothing behind


def test_scorecard_step_log_is_shown_escaped(tmp_path: Path) -> None:
    """A step that prints the server's hostile words: the last line and the log tail are inert."""
    script = tmp_path / "noisy.py"
    script.write_text(f"import sys\nsys.stdout.write({('x' * 100_000 + chr(10) + HOSTILE)!r})\n"
                      "sys.exit(5)\n", encoding="utf-8")
    step = Step("noisy", "a noisy step [/]", "chat-conformance", (), "noisy.json", 30.0)
    outcome = run_step(step, [sys.executable, str(script)], [], tmp_path)
    assert outcome.status == "error"
    assert_inert(outcome.detail)
    assert "[/]" in outcome.detail
    tail = outcome.log_tail()
    assert_inert(tail)
    assert tail.endswith(printable_text(HOSTILE, keep_newlines=True))


def test_chat_load_shows_a_hostile_command_as_text(tmp_path: Path) -> None:
    """A --server-cmd holding "[/]" and escapes: its live panel, summary and JSON stay intact and inert."""
    import io

    from rich.console import Console

    from loadtest.cli import main as load_main

    command = (f"{sys.executable} -c \"import runpy, sys; sys.argv = ['s', '--port', '{{port}}']; "
               f"runpy.run_module('reference.server', run_name='__main__')\" '[/] \x1b[2J\u202e'")
    screen = io.StringIO()
    status = load_main(["latency", "--clients", "2", "--messages", "5", "--warmup", "0",
                        "--server-cmd", command, "--json", str(tmp_path / "l.json")],
                       console=Console(file=screen, width=140))
    shown = screen.getvalue()
    assert status == 0, shown
    assert_inert(shown)
    assert "[/] \\x1b[2J\\u202e" in shown
    assert_inert((tmp_path / "l.json").read_text(encoding="utf-8"))
