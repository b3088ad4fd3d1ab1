"""The benchmark regression gate: compare a run with the committed baseline.

    python bench/compare.py bench/baselines/reference out/bench/current
    python bench/compare.py OLD.json NEW.json --threshold 50 --json out/bench/current.results.json
    python bench/compare.py --update-baseline bench/baselines/reference out/bench/current

Each argument is a ``pytest --benchmark-json`` file or a folder of them
(repeated runs of the suite: each benchmark counts with its best median).  Each benchmark's median is
divided by its own run's calibration median (a loopback ping-pong, see
bench/test_calibration.py) before comparing, so a uniformly slower machine
changes nothing while code that got slower does.  Exit status: 0 = no
benchmark slower than the threshold, 1 = at least one regression, 2 = bad
arguments or unreadable files.  The same-run ratios (target / naive or asyncio
server, see reports/benchratios.py) and the watched figures (memory per idle
client) are judged too: one more than the threshold above the baseline run's
also fails.  The judging lives in reports/benchjson.py and
reports/benchratios.py (shared with ``chat-report compare``); this file prints it and, with
``--confirm N``, re-measures suspects before failing: it re-runs only the
benchmarks that looked slower (same target and options, as recorded in the
current JSON by bench/conftest.py) up to N times, adding each re-run to the
current side.  A real slowdown is slow every time; a burst of someone else's
load on a shared machine is not.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from reference import exit_codes
from reference.cli_args import percentage
from reference.signals import terminate_as_interrupt
from reports.benchjson import (
    DEFAULT_THRESHOLD,
    BenchJsonError,
    BenchRun,
    Comparison,
    compare_runs,
    load_benchmark_runs,
    to_results_document,
    without_raw_timings,
)
from reports.benchratios import RatioChange, compare_ratios
from reports.results import json_option, write_document, write_text_atomic


def format_seconds(value: float | None) -> str:
    if value is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value / 1e-9:.3g} ns"


def format_change(ratio: float | None) -> str:
    return "-" if ratio is None else f"{(ratio - 1) * 100:+.0f}%"


def render_table(result: Comparison) -> str:
    """The comparison as plain text: a header, one row per benchmark, the verdict."""
    cal_note = ""
    if result.machine_factor is not None:
        cal_note = (f"calibration median: baseline {format_seconds(result.baseline_calibration_s)}, "
                    f"current {format_seconds(result.current_calibration_s)} "
                    f"(this machine x{result.machine_factor:.2f})")
    figure = "normalised median (median / calibration)" if result.normalised else "raw median"
    header = ("benchmark", "baseline", "current", "base norm", "cur norm", "change", "raw change",
              "status")
    rows = [header] + [(
        r.name, format_seconds(r.baseline_median_s), format_seconds(r.current_median_s),
        "-" if r.baseline_normalised is None else f"{r.baseline_normalised:.3g}",
        "-" if r.current_normalised is None else f"{r.current_normalised:.3g}",
        format_change(r.ratio), format_change(r.raw_ratio), r.status.upper() if r.status == "slower"
        else r.status,
    ) for r in result.rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [f"baseline: {result.baseline_source}", f"current:  {result.current_source}"]
    if cal_note:
        lines.append(cal_note)
    lines.append(f"compared: {figure}; a benchmark fails when it is more than "
                 f"{result.threshold * 100:.0f}% slower")
    lines.append("")
    for i, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:-1], widths[1:-1],
                                                                         strict=True)]
        lines.append("  ".join(cells + [row[-1]]).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    slower = result.regressions
    if slower:
        names = ", ".join(r.name for r in slower)
        lines.append(f"FAIL: {len(slower)} benchmark(s) slower than the baseline by more than "
                     f"{result.threshold * 100:.0f}%: {names}")
    else:
        lines.append(f"PASS: no benchmark is more than {result.threshold * 100:.0f}% slower "
                     "than the baseline")
    return "\n".join(lines)


def render_ratios(changes: Sequence[RatioChange], threshold: float) -> str:
    """Same-run ratios (target / baseline server) and watched figures, baseline run vs current."""
    if not changes:
        return ""
    lines = ["", f"same-run ratios and watched figures (lower is better; fails when more than "
                 f"{threshold * 100:.0f}% above the baseline run's):"]
    width = max(len(c.key) for c in changes)
    for c in changes:
        before = "-" if c.baseline_ratio is None else f"{c.baseline_ratio:.3g}"
        after = "-" if c.current_ratio is None else f"{c.current_ratio:.3g}"
        lines.append(f"  {c.key.ljust(width)}  {before:>8}  {after:>8}  {'WORSE' if c.slower else 'ok'}")
    worse = [c.key for c in changes if c.slower]
    lines.append(f"FAIL: {len(worse)} got worse: {', '.join(worse)}" if worse
                 else "PASS: no ratio or watched figure got worse beyond the threshold")
    return "\n".join(lines)


#: Bound on one confirmation re-run (a few benchmarks for --benchmark-max-time each).
CONFIRM_TIMEOUT_S = 600


def rerun_command(suspects: Sequence[str], run: BenchRun, json_path: Path) -> list[str]:
    """pytest command line that measures ``suspects`` again the way ``run`` did."""
    calibration = run.calibration
    nodeids = [*suspects, *([calibration.fullname] if calibration else [])]
    return [sys.executable, "-m", "pytest", *nodeids, "-p", "no:cacheprovider", "-q",
            f"--benchmark-json={json_path}", *run.harness.get("rerun_args", [])]


def confirm(result: Comparison, baseline: list[BenchRun], current: list[BenchRun], attempts: int,
            normalise: bool) -> Comparison:
    """Re-measure the regressions up to ``attempts`` times; return the final comparison."""
    recorded = next((run for run in reversed(current) if run.harness.get("rootdir")), None)
    for attempt in range(1, attempts + 1):
        suspects = [row.fullname for row in result.regressions]
        if not suspects:
            break
        if recorded is None:
            print("cannot confirm: the current JSON does not say how it was run "
                  "(not made by this checkout's bench/conftest.py)", file=sys.stderr)
            break
        with tempfile.TemporaryDirectory(prefix="bench-confirm-") as tmp:
            json_path = Path(tmp) / f"confirm-{attempt}.json"
            command = rerun_command(suspects, recorded, json_path)
            print(f"confirming {len(suspects)} suspected regression(s), attempt {attempt} of "
                  f"{attempts}: {shlex.join(command)}", file=sys.stderr, flush=True)
            done = subprocess.run(command, cwd=recorded.harness["rootdir"], capture_output=True,
                                  text=True, timeout=CONFIRM_TIMEOUT_S, check=False)
            if done.returncode != 0 or not json_path.exists():
                tail = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["no output"]
                print(f"confirmation run failed (exit {done.returncode}): {tail[0]}", file=sys.stderr)
                break
            current = [*current, load_benchmark_runs(json_path)[0]]
        result = compare_runs(baseline, current, result.threshold, normalise=normalise)
    return result


def update_baseline(folder: Path, runs: Sequence[BenchRun]) -> list[Path]:
    """Make ``runs`` the new baseline: ``folder`` then holds exactly these, raw timings dropped."""
    # Read everything before deleting anything: CURRENT may live in FOLDER.
    slim = [without_raw_timings(json.loads(Path(run.source).read_text(encoding="utf-8")))
            for run in runs]
    # Each file replaced atomically, then the extras removed: an interrupted update leaves
    # whole files (old or new), never a truncated baseline.
    written = [write_text_atomic(folder / f"run{i}.json", json.dumps(data, indent=1) + "\n")
               for i, data in enumerate(slim, 1)]
    for old in folder.glob("*.json"):
        if old not in written:
            old.unlink()
    return written


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench/compare.py",
        description="Fail when a benchmark got slower than the baseline (normalised by calibration).")
    parser.add_argument("baseline", help="baseline pytest-benchmark JSON file, or a folder of runs "
                                             "(e.g. bench/baselines/reference)")
    parser.add_argument("current", nargs="+", help="this run's pytest-benchmark JSON file(s) or folder(s)")
    parser.add_argument("--threshold", type=percentage, default=DEFAULT_THRESHOLD, metavar="PERCENT",
                        help="allowed slowdown of a normalised median, in percent "
                             f"(default {DEFAULT_THRESHOLD * 100:.0f})")
    parser.add_argument("--raw", action="store_true",
                        help="compare raw medians, without normalising (machine speed then counts)")
    parser.add_argument("--confirm", type=int, default=0, metavar="N",
                        help="re-run benchmarks that look slower up to N times before failing "
                             "(needs this checkout and the target used for CURRENT; default 0)")
    parser.add_argument("--update-baseline", action="store_true",
                        help="do not compare: replace the runs in the BASELINE folder by CURRENT "
                             "(without per-round timings), e.g. after a deliberate change")
    parser.add_argument("--json", **json_option("bench", what="the last current run as a results document"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    with terminate_as_interrupt() as caught:
        try:
            return _gate(parser, args)
        except KeyboardInterrupt:  # a confirmation run is killed by subprocess.run on the way out
            print(f"bench/compare.py: {caught.words}; nothing written", file=sys.stderr)
            return caught.exit_status


def _gate(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.confirm < 0:
        parser.error(f"--confirm {args.confirm} must not be negative")
    try:
        current = [run for path in args.current for run in load_benchmark_runs(path)]
        if args.update_baseline:
            if Path(args.baseline).is_file():
                parser.error(f"--update-baseline needs a folder, {args.baseline} is a file")
            for path in update_baseline(Path(args.baseline), current):
                print(f"wrote {path}")
            return exit_codes.OK
        baseline = load_benchmark_runs(args.baseline)
        result = compare_runs(baseline, current, args.threshold, normalise=not args.raw)
    except BenchJsonError as exc:
        parser.error(str(exc))
    if args.confirm and result.regressions:
        result = confirm(result, baseline, current, args.confirm, normalise=not args.raw)
    print(render_table(result))
    changes = compare_ratios(baseline, current, args.threshold)
    if changes:
        print(render_ratios(changes, args.threshold))
    if args.json:
        write_document(args.json, to_results_document(current[-1], tool="bench/compare.py"))
    regressed = result.verdict == "fail" or any(c.slower for c in changes)
    return exit_codes.FINDINGS if regressed else exit_codes.OK


if __name__ == "__main__":
    sys.exit(main())
