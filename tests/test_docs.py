"""The README stays a short front door and the documentation site stays whole.

The README's first two commands are what a newcomer runs first, so they must stay first and
true; the README stays short (the detail lives in docs/); every page in mkdocs.yml's
navigation exists.  The site itself is built with warnings as errors by ``tox -e docs``,
which checks the internal links and anchors; this module needs no MkDocs.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

#: The README's first code block, word for word: install and show the scorecard; run every test.
FIRST_COMMANDS = [
    "pip install '.[all]' && chat-report scorecard",
    "pip install tox && tox",
]
MAX_README_LINES = 160  # about 150: the detail lives in docs/


def _first_code_block(text: str) -> list[str]:
    match = re.search(r"^```\w*\n(.*?)^```", text, re.M | re.S)
    assert match, "the README has no code block"
    return [line.split("#", 1)[0].strip() for line in match.group(1).splitlines() if line.strip()]


def _nav_pages(config: str) -> list[str]:
    """Every ``Title: page.md`` of the nav: section (kept dependency-free: no YAML parser)."""
    nav = config[config.index("\nnav:"):]
    return re.findall(r":\s*([\w./-]+\.md)\s*$", nav, re.M)


def test_the_readme_opens_with_the_two_documented_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert text.startswith("# chat-harness\n\n```"), "the commands must come first, before any prose"
    assert _first_code_block(text) == FIRST_COMMANDS


def test_the_two_commands_are_true() -> None:
    """The second is what CI runs; the first names a real subcommand writing to ./scorecard/."""
    assert FIRST_COMMANDS[1] in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    from reports.cli import build_parser
    from reports.scorecard import ScorecardConfig
    assert build_parser().parse_args(["scorecard"]).command == "scorecard"
    assert ScorecardConfig.out_dir == Path("scorecard")
    assert "all" in (metadata.metadata("chat-harness").get_all("Provides-Extra") or [])


def test_the_site_home_shows_the_same_commands() -> None:
    assert _first_code_block((ROOT / "docs" / "index.md").read_text(encoding="utf-8")) == FIRST_COMMANDS


def test_the_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines < MAX_README_LINES, f"README.md has {lines} lines; move the detail into docs/"


def test_every_page_in_the_navigation_exists() -> None:
    pages = _nav_pages((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert len(pages) >= 10, pages
    missing = [page for page in pages if not (ROOT / "docs" / page).is_file()]
    assert not missing, f"mkdocs.yml names pages that do not exist: {missing}"


def test_every_page_is_in_the_navigation() -> None:
    """A page left out of the nav is unreachable (mkdocs only warns when it is linked)."""
    pages = set(_nav_pages((ROOT / "mkdocs.yml").read_text(encoding="utf-8")))
    on_disk = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert on_disk <= pages, f"pages not in mkdocs.yml's nav: {sorted(on_disk - pages)}"


def test_the_readme_links_only_to_files_that_exist() -> None:
    text = README.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    missing = [t for t in targets if not t.startswith("http") and not (ROOT / t).exists()]
    assert not missing, missing


def test_the_readme_anchors_name_its_headings() -> None:
    """GitHub's anchors: the heading in lower case, punctuation dropped, spaces as hyphens."""
    text = README.read_text(encoding="utf-8")
    headings = re.findall(r"^#+ (.+)$", re.sub(r"^```.*?^```", "", text, flags=re.M | re.S), re.M)
    slugs = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}
    anchors = re.findall(r"\]\(#([^)]+)\)", text)
    assert anchors and not set(anchors) - slugs, sorted(set(anchors) - slugs)


def test_the_servers_in_your_own_code_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/server.md's example, run as it is written: it prints the relay it promises."""
    text = (ROOT / "docs" / "server.md").read_text(encoding="utf-8")
    match = re.search(r"^```python\n(.*?)^```", text, re.M | re.S)
    assert match, "docs/server.md has no python example"
    exec(compile(match.group(1), "docs/server.md", "exec"), {"__name__": "docs_example"})
    assert capsys.readouterr().out == "Relay(sender='ana', text='hello')\n"
