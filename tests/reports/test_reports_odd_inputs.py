"""Odd input files and interrupted runs: one line and exit 2, never a traceback or a false PASS.

Damaged results documents (wrong types where the outline should be, fields of
the wrong type inside records, truncated JSON) go through every ``chat-report``
command that reads files; an interrupted conformance run is rendered
INCOMPLETE; and the one atomic writer leaves the old file whole when a write
fails half way.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from test_reports_samples import SAMPLES as GOOD_SAMPLES
from test_reports_samples import conformance_doc

from reports.cli import main as report_main
from reports.render_conformance import conformance_summary
from reports.results import write_text_atomic

SAMPLES: dict[str, Callable[[], dict[str, Any]]] = {**GOOD_SAMPLES,
                                                    "conformance": lambda: conformance_doc(broken=True)}


def _damaged(doc: dict[str, Any], how: str) -> str:
    doc = json.loads(json.dumps(doc))
    if how == "summary-is-a-list":
        doc["summary"] = [doc["summary"]]
    elif how == "records-is-a-string":
        doc["records"] = "records"
    elif how == "records-hold-numbers":
        doc["records"] = [1, 2]
    elif how == "no-records":
        del doc["records"]
    elif how == "unknown-kind":
        doc["kind"] = "weather"
    elif how == "fields-are-strings":
        doc["records"] = [{key: "x" for key in record} for record in doc["records"]]
    text = json.dumps(doc)
    return text[: len(text) // 2] if how == "truncated" else text


DAMAGE = ["summary-is-a-list", "records-is-a-string", "records-hold-numbers", "no-records", "unknown-kind",
          "fields-are-strings", "truncated"]


def _commands(kind: str, path: str, tmp_path: Path) -> list[list[str]]:
    commands = [["show", path], ["html", path, "-o", str(tmp_path / "r.html")]]
    if kind in ("latency", "bench"):
        commands.append(["compare", path, path])
    if kind == "conformance":
        commands.append(["matrix", path])
    return commands


@pytest.mark.parametrize("how", DAMAGE)
@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_damaged_documents_are_one_line_and_exit_2(kind: str, how: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Every chat-report command that reads files either shows the file or refuses it in one line."""
    path = tmp_path / f"{kind}.json"
    path.write_text(_damaged(SAMPLES[kind](), how), encoding="utf-8")
    for argv in _commands(kind, str(path), tmp_path):
        try:
            status = report_main(argv)
        except SystemExit as exc:
            status = int(exc.code or 0)
        err = capsys.readouterr().err
        if how == "fields-are-strings" and status == 0:
            continue  # a renderer that shows what it cannot read as "?" is fine
        assert status == 2, (argv, err)
        assert "Traceback" not in err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 2 and lines[0].startswith("usage:"), err  # argparse: usage + one line
        assert f"chat-report {argv[0]}: error: " in lines[1]


def test_an_interrupted_conformance_run_is_never_a_pass() -> None:
    """summary.incomplete turns PASS into INCOMPLETE, and is shown beside a FAIL."""
    doc = conformance_doc()
    doc["summary"]["incomplete"] = "interrupted after 3 of 55 selected cases"
    console = Console(file=io.StringIO(), width=120)
    console.print(conformance_summary(doc))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "INCOMPLETE: interrupted after 3 of 55 selected cases" in text
    assert "PASS" not in text
    broken = conformance_doc(broken=True)
    broken["summary"]["incomplete"] = "interrupted after 9 of 55 selected cases"
    console.print(conformance_summary(broken))
    assert "FAIL: a MUST requirement is broken (INCOMPLETE: interrupted after 9" in \
        console.file.getvalue()  # type: ignore[attr-defined]


def test_a_failed_write_leaves_the_old_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """write_text_atomic: the old report stays readable and no temporary file is left."""
    out = write_text_atomic(tmp_path / "report.txt", "old report\n")

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError):
        write_text_atomic(out, "new report that never lands\n" * 1000)
    assert out.read_text() == "old report\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.txt"]
