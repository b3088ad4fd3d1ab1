"""chat-report: show, export, compare and matrix results files; run the scorecard.

    chat-report show [-v] FILE...             the terminal report of each file
    chat-report html FILE... -o report.html   the same report, with plots, as one HTML file
    chat-report compare OLD NEW [--threshold PERCENT]
                                              regression table; exit 1 past the threshold
    chat-report matrix FILE... [-o m.html]    conformance cases by servers
    chat-report scorecard [--server HOST:PORT | --server-cmd CMD] [--out DIR]
                                              conformance + latency sweep + limits -> DIR

FILE may be a chat-harness results document, pytest-benchmark JSON, or locust
JSON/CSV output.  Exit statuses: 0 fine, 1 failures or regressions found,
2 bad usage or unreadable input, 3 target server unavailable (scorecard),
130 Ctrl-C / 143 SIGTERM (the scorecard stops the running step's process group
with SIGTERM, which every step handles like Ctrl-C, then reports the steps done).
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from reference import exit_codes
from reference.cli_args import percentage, positive_float, positive_int
from reference.console import tolerate_unencodable
from reference.printable import printable_text
from reference.signals import terminate_as_interrupt
from reference.target import TargetError, add_target_arguments, spec_from_args
from reference.version import add_version_argument
from reports import benchjson
from reports.compare import DEFAULT_LATENCY_THRESHOLD, compare_documents
from reports.fit import fit_widths
from reports.html import RecordedReport
from reports.loaders import load_any
from reports.matrix import matrix_renderables
from reports.plots import plots_for
from reports.render_bench import renderables_for
from reports.results import ResultsError
from reports.scorecard import ScorecardConfig, Step, StepOutcome, run_scorecard
from reports.scorecard_report import STEP_STYLES, headline, write_scorecard_report

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_FAILURES, EXIT_USAGE, EXIT_UNAVAILABLE = (exit_codes.OK, exit_codes.FINDINGS, exit_codes.USAGE,
                                                     exit_codes.TARGET_UNAVAILABLE)




def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chat-report", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_version_argument(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    show = sub.add_parser("show", help="print the terminal report of results files")
    show.add_argument("files", nargs="+", metavar="FILE")
    show.add_argument("-v", "--transcripts", action="store_true", default=False,
                      help="conformance: every case's verdict and every failed case's wire transcript "
                           "(default: the root causes and one line per failed case)")

    html = sub.add_parser("html", help="write results files as one standalone HTML report with plots")
    html.add_argument("files", nargs="+", metavar="FILE")
    html.add_argument("-o", "--output", metavar="OUT.html", default="report.html",
                      help="where to write the HTML (default %(default)s)")

    compare = sub.add_parser("compare", help="compare two bench or latency results; exit 1 on regression")
    compare.add_argument("old", metavar="OLD")
    compare.add_argument("new", metavar="NEW")
    compare.add_argument("--threshold", metavar="PERCENT", type=percentage, default=None,
                         help="how much worse counts as a regression (default: the bench gate's "
                              f"{benchjson.DEFAULT_THRESHOLD * 100:g}%% for benchmarks, which are "
                              "normalised by their calibration as the gate does; "
                              f"{DEFAULT_LATENCY_THRESHOLD * 100:g}%% for latency)")

    matrix = sub.add_parser("matrix", help="conformance cases by servers, from several conformance results")
    matrix.add_argument("files", nargs="+", metavar="FILE")
    matrix.add_argument("-o", "--output", metavar="OUT.html", default=None, help="also write it as HTML")

    card = sub.add_parser("scorecard", help="run conformance, a latency sweep and the limits probe "
                                            "against one server; write the reports into --out")
    add_target_arguments(card)
    card.add_argument("--out", metavar="DIR", type=Path, default=Path("scorecard"),
                      help="output folder for report.txt, report.html and the JSON (default %(default)s)")
    card.add_argument("--sweep", metavar="N,N,...", default="2,10,50",
                      help="client counts of the latency sweep (default %(default)s)")
    card.add_argument("--duration", metavar="SECONDS", type=positive_float, default=3.0,
                      help="seconds measured per latency scenario (default %(default)s)")
    card.add_argument("--limits-max", metavar="N", type=positive_int, default=2000,
                      help="most clients the limits probe tries (default %(default)s)")
    card.add_argument("--limits-step", metavar="N", type=positive_int, default=250,
                      help="clients added per limits step (default %(default)s)")
    for name, subparser in sub.choices.items():
        # Errors in a subcommand's input are reported with that subcommand's usage line.
        subparser.set_defaults(handler=_COMMANDS[name], subparser=subparser)
    return parser


def _load_all(parser: argparse.ArgumentParser, files: Sequence[str]) -> list[dict[str, Any]]:
    try:
        return [load_any(path) for path in files]
    except ResultsError as exc:
        parser.error(str(exc))


#: What reading a field of the wrong type raises inside a renderer.
_SHAPE_ERRORS = (AttributeError, TypeError, KeyError, ValueError, IndexError, ZeroDivisionError)


@contextmanager
def _well_formed(parser: argparse.ArgumentParser, source: str) -> Iterator[None]:
    """A document whose fields have the wrong types is bad input: one line, exit 2, no traceback.

    load_any checks the outline (kind, summary, records); a field deep inside a
    record is only checked by the renderer that reads it.
    """
    try:
        yield
    except _SHAPE_ERRORS as exc:
        parser.error(f"{source}: a field has the wrong type or value for its kind, so it cannot "
                     f"be shown ({type(exc).__name__}: {printable_text(str(exc), 200)})")


def _report_console(file: Any = None) -> Console:
    """The recording console: the terminal's width, kept between 100 and 130 columns."""
    width = min(max(shutil.get_terminal_size((110, 24)).columns, 100), 130)
    return Console(record=True, width=width, file=file, markup=False)  # results are data, never markup


def _terminal_console() -> Console:
    """Plain output console at the terminal's own width (rich: 80 in a pipe or CI log).

    A wider console than the terminal would make every line wrap; tables that do not
    fit are stacked instead (:mod:`reports.fit`), so no column is ever dropped.
    Results are data, never markup.
    """
    return Console(markup=False)


def _cmd_show(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    console = _terminal_console()
    for path, doc in zip(args.files, _load_all(parser, args.files), strict=True):
        with _well_formed(parser, path):
            # Rendered in full before printing, so a bad file prints nothing half way.
            with console.capture() as capture:
                for renderable in renderables_for(doc, transcripts=args.transcripts):
                    console.print(renderable)
                console.print()
        sys.stdout.write(capture.get())
    return EXIT_OK


def _cmd_html(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    docs = _load_all(parser, args.files)
    report = RecordedReport(_report_console(io.StringIO()), title="chat-harness report")
    for path, doc in zip(args.files, docs, strict=True):
        with _well_formed(parser, path):
            # Every transcript is there, each folded in a <details> under the root causes.
            report.add(renderables_for(doc, transcripts=True), plots_for(doc))
    out = report.save_html(args.output)
    print(f"wrote {out} ({len(docs)} results, {report.plot_count} plots)")
    return EXIT_OK


def _cmd_compare(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    old, new = _load_all(parser, [args.old, args.new])
    console = _terminal_console()
    try:
        with _well_formed(parser, f"{args.old} or {args.new}"), console.capture() as capture:
            renderables, regressed = compare_documents(old, new, args.threshold)
            for renderable in fit_widths(renderables):
                console.print(renderable)
    except ResultsError as exc:
        parser.error(str(exc))
    sys.stdout.write(capture.get())
    return EXIT_FAILURES if regressed else EXIT_OK


def _cmd_matrix(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    docs = _load_all(parser, args.files)
    report = RecordedReport(_report_console(), title="chat-harness conformance matrix")
    try:
        with _well_formed(parser, ", ".join(args.files)):
            report.add(matrix_renderables(docs, args.files))
    except ResultsError as exc:
        parser.error(str(exc))
    if args.output:
        print(f"wrote {report.save_html(args.output)}")
    return EXIT_OK


def _cmd_scorecard(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    spec = spec_from_args(parser, args)
    if not all(part.strip().isdigit() and int(part) > 0 for part in args.sweep.split(",")):
        parser.error(f"--sweep {args.sweep!r} is not a comma-separated list of client counts, e.g. 2,10,50")
    config = ScorecardConfig(spec=spec, out_dir=args.out, sweep=args.sweep, duration_s=args.duration,
                             limits_max=args.limits_max, limits_step=args.limits_step)
    status = Console(stderr=True)
    status.print(Text.assemble(("chat-harness scorecard", "bold"),
                               f" against {spec.label}; writing into {config.out_dir}/"))
    # The description is a step's last output line: data, so never parsed as markup.
    progress = Progress(SpinnerColumn(), TextColumn("[bold]{task.fields[step]}"),
                        TextColumn("{task.description}", style="dim", markup=False), TimeElapsedColumn(),
                        console=status, transient=True)
    tasks: dict[str, Any] = {}

    def on_start(step: Step) -> None:
        tasks[step.name] = progress.add_task("starting", step=step.title, total=None)

    def on_output(step: Step, line: str) -> None:
        if line and not line.startswith("$ "):  # the log's first line is our own command
            progress.update(tasks[step.name], description=line[:48])

    def on_done(outcome: StepOutcome) -> None:
        progress.remove_task(tasks[outcome.step.name])
        status.print(Text.assemble("  ", (f"{outcome.status:<18}", STEP_STYLES.get(outcome.status, "")),
                                   (f"{outcome.step.title}", "bold"), f" ({outcome.duration_s:.0f} s): ",
                                   headline(outcome)))

    with terminate_as_interrupt() as caught:
        try:
            with progress:
                run = run_scorecard(config, on_start=on_start, on_output=on_output, on_done=on_done)
            write_scorecard_report(run, _report_console())
        except TargetError as exc:
            print(f"chat-report scorecard: target unavailable: {exc}", file=sys.stderr)
            return EXIT_UNAVAILABLE
        except KeyboardInterrupt:  # while starting the target or writing the report
            print(f"chat-report scorecard: {caught.words}", file=sys.stderr)
            return caught.exit_status
    if run.interrupted:
        print(f"chat-report scorecard: {caught.words} ({run.interrupted}); the report of the "
              f"{len(run.outcomes)} finished step(s) is in {config.out_dir}/", file=sys.stderr)
        return caught.exit_status
    status.print(Text(f"wrote {config.out_dir / 'report.txt'}, {config.out_dir / 'report.html'} and the "
                      f"JSON results in {config.out_dir}/ ({run.duration_s:.0f} s)"))
    return run.exit_status


_COMMANDS: dict[str, Callable[[argparse.ArgumentParser, argparse.Namespace], int]] = {
    "show": _cmd_show, "html": _cmd_html, "compare": _cmd_compare, "matrix": _cmd_matrix,
    "scorecard": _cmd_scorecard,
}


def main(argv: Sequence[str] | None = None) -> int:
    tolerate_unencodable()  # a non-UTF-8 console shows '?' for what it lacks, not a traceback
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.handler(args.subparser, args))


if __name__ == "__main__":
    sys.exit(main())
