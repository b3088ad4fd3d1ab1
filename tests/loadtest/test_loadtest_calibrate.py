"""``chat-load calibrate``: the instrument check runs and reports comparable numbers.

Whether the generator is within 30% of the bare loop is a speed claim, checked
in the documented run (README), never asserted here.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from loadtest.cli import main
from reports.results import load_document


@pytest.mark.slow  # three timed runs (bare loop, generator, absorption): 3-4 s
def test_calibrate_compares_against_a_bare_loop_and_measures_absorption(tmp_path: Path) -> None:
    out = tmp_path / "calibrate.json"
    screen = io.StringIO()
    main(["calibrate", "--rounds", "1", "--seconds", "0.5", "--rate", "40", "--absorb-clients", "2",
          "--absorb-count", "3000", "--json", str(out)], console=Console(file=screen, width=140))
    doc = load_document(out, kind="bench")
    summary = doc["summary"]
    assert "versus_locust" not in summary  # only with --vs-locust
    bare, generated, absorbed = doc["records"]
    assert bare["name"].startswith("bare") and generated["name"].startswith("chat-load latency")
    assert summary["bare_p50_us"] > 0 and summary["generator_p50_us"] > 0
    # The ratio comes from the unrounded medians the records keep (the summary's µs are rounded).
    assert summary["ratio"] == pytest.approx(generated["median_s"] / bare["median_s"], abs=0.0006)
    assert absorbed["deliveries"] == absorbed["expected"] == 6000
    assert absorbed["reordered"] == absorbed["duplicated"] == 0
    assert summary["absorb_frames_per_s"] == absorbed["frames_per_s"] > 0
    assert "Instrument:" in screen.getvalue()
