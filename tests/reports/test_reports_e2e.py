"""The README's main job, for real: ``chat-report scorecard`` with its defaults.

It runs the real chat-conformance and chat-load console scripts against the
embedded reference server (about 30 s on an idle 2-core machine) and checks
what a user gets: progress, the report on stdout, and report.txt, report.html
and the three JSON results in --out.  The reference server passes everything,
so the exit status is 0.  Skipped only if the producers are not installed.

The README's screenshot comes from this test:
``CHAT_REPORT_SCREENSHOT=docs/scorecard-report.png pytest tests/test_reports_e2e.py``
(needs chromium) saves the top of the HTML report there.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_reports_html import CHROMIUM, chromium

from reports.loaders import load_any
from reports.scorecard import resolve_tool

MISSING = [tool for tool in ("chat-conformance", "chat-load") if resolve_tool(tool) is None]
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(bool(MISSING), reason=f"not installed: {', '.join(MISSING)} "
                                                       "(pip install -e '.[all]')")]


def test_the_scorecard_with_its_defaults_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "scorecard"
    result = subprocess.run([sys.executable, "-m", "reports.cli", "scorecard", "--out", "scorecard"],
                            cwd=tmp_path, env=dict(os.environ, COLUMNS="110"),
                            capture_output=True, text=True, timeout=110, check=False)
    assert result.returncode == 0, f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"

    # progress: one line per finished step, on stderr
    for step in ("Conformance suite", "Latency sweep (2,10,50 clients)", "Limits probe (up to 2000 clients)"):
        assert re.search(rf"ok\s+{re.escape(step)}", result.stderr), result.stderr
    # the report itself on stdout, the same as report.txt
    text = (out / "report.txt").read_text(encoding="utf-8")
    assert "every step ran and passed" in result.stdout and "every step ran and passed" in text
    assert "PASS: no MUST requirement broken" in text
    assert "Correctness: OK" in text and "Highest healthy client count:" in text

    kinds = {name: load_any(out / f"{name}.json")["kind"] for name in ("conformance", "latency", "limits")}
    assert kinds == {"conformance": "conformance", "latency": "latency", "limits": "limits"}
    latency = load_any(out / "latency.json")
    assert [r["clients"] for r in latency["records"]] == [2, 10, 50]

    html = (out / "report.html").read_text(encoding="utf-8")
    plots = re.findall(r'<img alt="([^"]+)"', html)
    assert plots == ["Latency percentiles vs clients", "Latency distribution",
                     "Clients held during the limits ramp"]
    assert {p.name for p in (out / "logs").iterdir()} == {"conformance.log", "latency.log", "limits.log"}

    screenshot = os.environ.get("CHAT_REPORT_SCREENSHOT")
    if screenshot and CHROMIUM:
        save_screenshot(out / "report.html", Path(screenshot), tmp_path)


def save_screenshot(report: Path, target: Path, tmp_path: Path) -> None:
    """The top of the report (front page, conformance verdicts, latency and its first plot)."""
    from PIL import Image

    raw = tmp_path / "raw.png"
    chromium(tmp_path, "--window-size=1000,1900", f"--screenshot={raw}", report.as_uri())
    target.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(raw) as image:
        # 256 colours keep the PNG small; the terminal palette and the plots need far fewer.
        image.convert("RGB").quantize(256).save(target, optimize=True)
