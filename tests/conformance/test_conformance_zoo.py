"""Proof of the diagnosis on real servers: each broken server in the zoo is diagnosed as its defect.

Every server in tests/servers/ names the requirements it breaks in its
docstring's first line ("... (breaks RELAY-4)").  The whole suite runs
against each, as a user runs it, and the first root cause of the results'
``diagnosis`` must be one of those requirements (for a single-defect server:
exactly its requirement).  The classic tutorial server must also be
recognised, and its default terminal report must stay short.

Slow (the whole suite per server, two at a time):
``pytest -m slow tests/conformance/test_conformance_zoo.py``.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from conformance.requirements import REQUIREMENTS
from reports.results import load_document

ROOT = Path(__file__).resolve().parents[2]
SERVERS = ROOT / "tests" / "servers"
RUN_TIMEOUT = 400.0
TUTORIAL = "tutorial_server.py"
#: The suite judges no case of these requirements (LIMIT-1 needs a thousand clients: chat-load limits).
NOT_JUDGED_HERE = {"LIMIT-1", "LIMIT-2", "ADDR-1"}

pytestmark = pytest.mark.slow


def broken_requirements(path: Path) -> list[str]:
    """The requirements a zoo server's docstring says it breaks, in the order named."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    first = " ".join(doc.split("\n\n")[0].split())
    breaks = re.search(r"\(breaks ([^)]*)\)", first)
    if breaks is None:
        return []
    named = []
    for part in re.findall(r"([A-Z]+)-(\d+)(?:\.\.(\d+))?", breaks.group(1)):
        group, low, high = part
        named += [f"{group}-{n}" for n in range(int(low), int(high or low) + 1)]
    return [r for r in named if r in REQUIREMENTS]


def zoo() -> list[Path]:
    """The servers that break something this suite judges (not the hanging or the merely slow)."""
    return sorted(p for p in SERVERS.glob("*_server.py")
                  if set(broken_requirements(p)) - NOT_JUDGED_HERE and "nearly everything" not in
                  (ast.get_docstring(ast.parse(p.read_text(encoding="utf-8"))) or ""))


Run = tuple[int, str, dict[str, Any]]  # exit status, stdout, the results document


def run_suite(server: Path, out: Path) -> Run:
    json_path = out / f"{server.stem}.json"
    proc = subprocess.run([sys.executable, "-m", "conformance.cli", "--json", str(json_path),
                           "--server-cmd", f"{sys.executable} {server} --port {{port}}"],
                          capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=ROOT)
    return proc.returncode, proc.stdout, load_document(json_path, kind="conformance")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future[Run]]]:
    out = tmp_path_factory.mktemp("zoo")
    with ThreadPoolExecutor(2) as pool:
        yield {p.name: pool.submit(run_suite, p, out) for p in zoo()}


def test_the_zoo_is_read_from_the_docstrings() -> None:
    assert broken_requirements(SERVERS / "lossy_server.py") == ["RELAY-4"]
    assert broken_requirements(SERVERS / TUTORIAL)[:3] == ["ROBUST-1", "ROBUST-2", "ROBUST-3"]
    names = [p.name for p in zoo()]
    assert "hang_server.py" not in names and "slow_server.py" not in names
    assert {"lossy_server.py", "reordering_server.py", "duplicating_server.py",
            "echo_server.py"} <= set(names)


@pytest.mark.parametrize("server", [p.name for p in zoo()])
def test_first_root_cause_is_the_servers_own_requirement(runs: dict[str, Future[Any]], server: str) -> None:
    status, output, doc = runs[server].result(timeout=RUN_TIMEOUT * 4)
    named = broken_requirements(SERVERS / server)
    diagnosis = doc["diagnosis"]
    assert diagnosis, f"{server}: nothing diagnosed (exit {status})\n{output[-3000:]}"
    first = diagnosis[0]
    assert first["requirement"] in named, (server, named, [(c["requirement"], c["key"]) for c in diagnosis])
    if len(named) == 1:
        assert first["requirement"] == named[0]
    failed = {r["id"] for r in doc["records"] if r["verdict"] in ("fail", "non-strict")}
    explained = [case for cause in diagnosis for case in cause["cases"]]
    assert sorted(explained) == sorted(failed)  # every failed case counted once, under one cause
    assert first["evidence"]["case"] in first["cases"] and first["fix"] and first["link"]


def test_tutorial_server_is_recognised_and_its_report_is_short(runs: dict[str, Future[Any]]) -> None:
    status, output, doc = runs[TUTORIAL].result(timeout=RUN_TIMEOUT * 4)
    assert status == 1
    assert doc["summary"]["recognised"].startswith("This looks like the classic tutorial server")
    lines = output.splitlines()
    assert len(lines) < 200, f"{len(lines)} lines"
    text = " ".join(output.split())
    # The first screen: the causes come before the list of cases, and the first names ROBUST-1.
    assert text.index("Root causes") < text.index("Cases that did not pass")
    assert "1. [ROBUST-1]" in text and "wire transcript:" not in text
