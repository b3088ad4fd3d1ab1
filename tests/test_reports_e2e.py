"""The README's main job, for real: ``chat-report scorecard`` with its defaults.

It runs the real chat-conformance and chat-load console scripts against the
embedded reference server (about 30 s on an idle 2-core machine) and checks
what a user gets: progress, the report on stdout, and report.txt, report.html
and the three JSON results in --out.  The reference server passes everything,
so the exit status is 0.  Skipped only if the producers are not installed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from reports.loaders import load_any
from reports.scorecard import resolve_tool

MISSING = [tool for tool in ("chat-conformance", "chat-load") if resolve_tool(tool) is None]
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"not installed: {', '.join(MISSING)} "
                                                      "(pip install -e '.[all]')")


def test_the_scorecard_with_its_defaults_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "scorecard"
    result = subprocess.run([sys.executable, "-m", "reports.cli", "scorecard", "--out", str(out)],
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
