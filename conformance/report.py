"""What the suite prints: the case list (--list) and the report around pytest's own output.

The report is built from the results document itself (the same one
``--json`` writes), by the same builder as ``chat-report show``, so the
terminal, the JSON and a later ``show`` never disagree: the outcome, the
ranked root causes, one line per case that did not pass, the findings, and
with ``--transcripts`` (or ``-v``) every failed case's wire transcript.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from conformance.requirements import REQUIREMENTS
from conformance.verdicts import CaseInfo
from reference.console import EncodedBuffer, stream_encoding

__all__ = ["render_report", "write_list"]


def write_list(infos: Sequence[CaseInfo], write: Callable[[str], Any],
               unclaimed: Mapping[str, int] | None = None) -> None:
    """The cases grouped by requirement: the requirement's level and text, then its cases.

    ``unclaimed``: cases left out per profile the target does not claim (said before the count).
    """
    by_req: dict[str, list[CaseInfo]] = defaultdict(list)
    for info in infos:
        by_req[info.requirement.id].append(info)
    width = max((len(i.id) for i in infos), default=10)
    for req_id in [r for r in REQUIREMENTS if r in by_req]:
        cases = by_req[req_id]
        requirement = cases[0].requirement
        write(f"{req_id} ({requirement.level.value}) {requirement.text}")
        for info in cases:
            level = f" [{info.level.value}]" if info.level is not requirement.level else ""
            expected = "  [expected to fail]" if info.expected_failure else ""
            profile = f"  [profile {'+'.join(info.profiles)}]" if info.profiles else ""
            write(f"  {info.id:<{width}}  {info.title}{level}{profile}{expected}")
    if unclaimed:
        write(f"not listed: {', '.join(f'{n} cases of profile {p}' for p, n in unclaimed.items())}"
              f" (--profile {','.join(unclaimed)} lists them)")
    write(f"{len(infos)} cases")


def render_report(reporter: Any, doc: Mapping[str, Any], part: str, *,
                  transcripts: bool = False) -> None:
    """Print the report's ``head`` or ``tail`` through pytest's terminal reporter.

    The tail is :func:`reports.render_conformance.conformance_renderables`,
    the builder ``chat-report show`` prints too; the head (only printed when
    pytest shows its own failure sections) names the target and the run's
    troubles, so they are read before thirty failures.
    """
    from rich.console import Console
    from rich.text import Text

    from reports.render_conformance import conformance_renderables, run_notes
    writer = reporter._tw
    # Rendered for the terminal's encoding: pytest's writer would otherwise turn the whole
    # report into one line of escapes at the first character a cp1252 stdout lacks.
    out = EncodedBuffer(stream_encoding(getattr(writer, "_file", None)))
    console = Console(file=out, width=max(100, min(writer.fullwidth, 130)), force_terminal=writer.hasmarkup,
                      color_system="standard" if writer.hasmarkup else None, highlight=False,
                      soft_wrap=False)
    if part == "head":
        reporter.write_sep("=", "chat-conformance")
        target = doc.get("target") or {}
        console.print(Text(f"chat-conformance judged {target.get('label')}: "
                           f"{(doc.get('summary') or {}).get('total', 0)} cases", style="bold"),
                      soft_wrap=True)
        for dialect in (doc.get("summary") or {}).get("dialects") or []:
            console.print(Text(f"Dialect recognised -- {dialect}", style="bold yellow"), soft_wrap=True)
        for renderable in run_notes(doc):
            console.print(renderable, soft_wrap=True)
    else:
        reporter.write_sep("=", "chat-conformance report")
        for renderable in conformance_renderables(doc, show_cases=transcripts, transcripts=transcripts):
            console.print(renderable)
    reporter.write(out.getvalue())
