"""The HTML report opened in a real headless Chromium: the plots must decode and show.

Two independent checks: a page script lists every image's decoded size (read
back with ``--dump-dom``), and a screenshot must contain the plots' own colour
(matplotlib's default blue, which the terminal sections never use).  Skipped
only when Chromium is not installed; ``.ci/run`` installs Debian's ``chromium``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_reports_samples import bench_doc, conformance_doc, latency_doc, limits_doc

from reports.cli import main
from reports.results import write_document

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                "(apt-get install chromium; .ci/run does)")

IMAGE_CHECK = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images).map(img => ({
    alt: img.alt, complete: img.complete, width: img.naturalWidth, height: img.naturalHeight}));
  const out = document.createElement("pre");
  out.id = "image-check";
  out.textContent = JSON.stringify(images);
  document.body.appendChild(out);
});
</script>
"""
#: matplotlib's first colour (tab:blue): plot lines and bars, never rich's terminal palette.
PLOT_BLUE = (31, 119, 180)


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    profile = tmp_path / "chromium-profile"
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
               f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("html-report")
    files = [str(write_document(folder / f"{name}.json", builder())) for name, builder in
             (("latency", latency_doc), ("limits", limits_doc),
              ("conformance", lambda: conformance_doc(broken=True)), ("bench", bench_doc))]
    out = folder / "report.html"
    assert main(["html", *files, "-o", str(out)]) == 0
    return out


def test_the_report_is_one_standalone_file(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    images = re.findall(r'<img alt="([^"]+)" src="([^"]+)"', html)
    assert [alt for alt, _ in images] == ["Latency percentiles vs clients", "Latency distribution",
                                          "Clients held during the limits ramp", "Benchmarks"]
    assert all(src.startswith("data:image/png;base64,iVBORw0KGgo") for _, src in images)
    assert not re.search(r'(src|href)="(https?:)?//', html), "the report must not load anything remote"
    assert "relay.basic[one-byte-per-send]" in html and "FAIL: a MUST requirement is broken" in html


@pytest.mark.slow
def test_chromium_decodes_every_plot(report: Path, tmp_path: Path) -> None:
    page = tmp_path / "checked.html"
    page.write_text(report.read_text(encoding="utf-8").replace("</body>", IMAGE_CHECK + "</body>"),
                    encoding="utf-8")
    result = chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", page.as_uri())
    match = re.search(r'<pre id="image-check">(.*?)</pre>', result.stdout, re.S)
    assert match, f"no image check in the DOM; chromium said: {result.stderr[-2000:]}"
    images = json.loads(match.group(1).replace("&quot;", '"'))
    assert len(images) == 4
    for image in images:
        assert image["complete"] and image["width"] >= 400 and image["height"] >= 200, image


@pytest.mark.slow
def test_a_screenshot_shows_the_plots(report: Path, tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    shot = tmp_path / "report.png"
    # The latency section comes first, so its plots are inside the top 2000 pixels.
    result = chromium(tmp_path, "--window-size=1000,2000", f"--screenshot={shot}", report.as_uri())
    assert shot.exists(), f"no screenshot; chromium said: {result.stderr[-2000:]}"
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.int16).reshape(-1, 3)
    blue = int((np.abs(pixels - np.array(PLOT_BLUE)) <= 6).all(axis=1).sum())
    colours = len(np.unique(pixels, axis=0))
    assert colours > 200, "the page looks blank"
    assert blue > 2000, f"only {blue} pixels of the plots' blue: the plots did not render"
