"""pytest-benchmark JSON: load it, normalise it by its calibration, compare two runs.

Pure functions, no I/O beyond reading the file, no third-party imports, so the
regression gate (``bench/compare.py``, ``tox -e bench-compare``) and
``chat-report compare`` share one definition of "slower".

Why normalise: a CI machine that is uniformly twice as slow doubles every
timing, the calibration included (a fixed workload that runs no code under
test, see bench/calibration.py).  Dividing each median by a calibration median
of the same run cancels that, while a real 2x slowdown of one benchmark still
doubles its normalised figure.  The divisor is the calibration measured right
around that benchmark (``extra_info["calibration_s"]``) when the run recorded
one -- a shared machine's speed drifts during a run -- else the median of the
run's calibration benchmark (``group == "calibration"``).

Why repeated runs: on a shared machine a burst of someone else's work can slow
one benchmark of one run.  Either side of a comparison may be several runs of
the same suite; each benchmark then counts with its lowest median (noise only
adds time, a real slowdown is in every run)::

    baseline = load_benchmark_runs("bench/baselines/reference")   # folder of runs
    current = load_benchmark_runs("out/bench/current/run1.json")  # or one file
    result = compare_runs(baseline, current, threshold=0.75)
    result.verdict          # "pass" or "fail"
    for row in result.rows: # one per benchmark, worst first
        row.name, row.ratio, row.status
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reports.results import make_document

__all__ = [
    "CALIBRATION_GROUP",
    "DEFAULT_THRESHOLD",
    "BenchJsonError",
    "BenchResult",
    "BenchRun",
    "Comparison",
    "ComparisonRow",
    "compare_runs",
    "find_calibration",
    "load_benchmark_json",
    "load_benchmark_runs",
    "normalised_medians",
    "parse_benchmark_json",
    "scaled_run",
    "without_raw_timings",
    "to_results_document",
]

#: The pytest-benchmark group of the machine-speed calibration benchmark.
CALIBRATION_GROUP = "calibration"
#: Fail when a normalised median is more than 75 % slower than the baseline's:
#: a real 2x slowdown (+100 %) fails with room to spare, while the spread of
#: unchanged code stays inside it (measured on the shared 2-core development VM
#: at load average 2.4: best-of-2 against best-of-2 runs, normalised figures of
#: unchanged code reached +74 %; at a 50 % threshold 2 gates in 3 failed).
DEFAULT_THRESHOLD = 0.75
#: Every ComparisonRow.status; only "slower" fails the gate.
STATUSES = ("slower", "missing", "new", "faster", "ok", "calibration")


class BenchJsonError(ValueError):
    """A file is not pytest-benchmark JSON, or cannot be compared; one line, plain words."""


@dataclass(frozen=True)
class BenchResult:
    """One benchmark of one run (times in seconds, per iteration)."""

    name: str                 # e.g. "test_fanout_latency[reference-100]"
    fullname: str             # e.g. "bench/test_server.py::test_fanout_latency[reference-100]"
    group: str | None
    params: Mapping[str, Any]
    median_s: float
    mean_s: float
    min_s: float
    max_s: float
    stddev_s: float
    rounds: int
    ops: float
    extra_info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_calibration(self) -> bool:
        return self.group == CALIBRATION_GROUP or self.extra_info.get("calibration") is True

    @property
    def local_calibration_s(self) -> float | None:
        """The calibration measured right around this benchmark, if the run recorded it."""
        value = self.extra_info.get("calibration_s")
        return float(value) if isinstance(value, int | float) and value > 0 else None


@dataclass(frozen=True)
class BenchRun:
    """Every benchmark of one pytest-benchmark run, plus where it ran."""

    results: tuple[BenchResult, ...]
    source: str = ""
    datetime: str | None = None
    machine_info: Mapping[str, Any] = field(default_factory=dict)
    commit_info: Mapping[str, Any] = field(default_factory=dict)
    #: What bench/conftest.py recorded: target, rootdir, options to re-run a benchmark.
    harness: Mapping[str, Any] = field(default_factory=dict)

    @property
    def calibration(self) -> BenchResult | None:
        return find_calibration(self.results)

    def by_fullname(self) -> dict[str, BenchResult]:
        return {r.fullname: r for r in self.results}


@dataclass(frozen=True)
class ComparisonRow:
    """One benchmark in both runs.  ``ratio`` > 1 means the current run is slower."""

    fullname: str
    name: str
    group: str | None
    status: str                         # one of STATUSES
    baseline_median_s: float | None
    current_median_s: float | None
    baseline_normalised: float | None   # median / calibration median (best run)
    current_normalised: float | None
    ratio: float | None                 # current_normalised / baseline_normalised
    raw_ratio: float | None             # current_median / baseline_median, for contrast


@dataclass(frozen=True)
class Comparison:
    """The gate's answer: rows, worst first, and a verdict."""

    rows: tuple[ComparisonRow, ...]
    threshold: float
    normalised: bool
    baseline_calibration_s: float | None
    current_calibration_s: float | None
    baseline_source: str = ""
    current_source: str = ""

    @property
    def regressions(self) -> tuple[ComparisonRow, ...]:
        return tuple(r for r in self.rows if r.status == "slower")

    @property
    def verdict(self) -> str:
        return "fail" if self.regressions else "pass"

    @property
    def machine_factor(self) -> float | None:
        """How much slower the current machine's calibration was (2.0 = half as fast)."""
        if self.baseline_calibration_s and self.current_calibration_s:
            return self.current_calibration_s / self.baseline_calibration_s
        return None


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------
def _result_from_json(entry: Mapping[str, Any], source: str) -> BenchResult:
    try:
        stats = entry["stats"]
        return BenchResult(
            name=str(entry["name"]),
            fullname=str(entry.get("fullname") or entry["name"]),
            group=entry.get("group"),
            params=dict(entry.get("params") or {}),
            median_s=float(stats["median"]),
            mean_s=float(stats["mean"]),
            min_s=float(stats["min"]),
            max_s=float(stats["max"]),
            stddev_s=float(stats.get("stddev") or 0.0),
            rounds=int(stats["rounds"]),
            ops=float(stats.get("ops") or 0.0),
            extra_info=dict(entry.get("extra_info") or {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        what = entry.get("name", "?") if isinstance(entry, Mapping) else "?"
        raise BenchJsonError(f"{source}: benchmark {what!r} has no usable stats ({exc!r})") from None


def parse_benchmark_json(data: Any, source: str = "<data>") -> BenchRun:
    """Build a BenchRun from the decoded JSON of ``pytest --benchmark-json``."""
    if not isinstance(data, Mapping) or not isinstance(data.get("benchmarks"), list):
        raise BenchJsonError(f"{source}: not pytest-benchmark JSON (no 'benchmarks' list)")
    results = tuple(_result_from_json(entry, source) for entry in data["benchmarks"])
    return BenchRun(results=results, source=source, datetime=data.get("datetime"),
                    machine_info=dict(data.get("machine_info") or {}),
                    commit_info=dict(data.get("commit_info") or {}),
                    harness=dict(data.get("chat_harness") or {}))


def load_benchmark_json(path: str | os.PathLike[str]) -> BenchRun:
    """Read a ``--benchmark-json`` file (or a ``--benchmark-save`` file: same shape)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchJsonError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BenchJsonError(f"{p}: not readable JSON ({exc})") from None
    return parse_benchmark_json(data, str(p))


def load_benchmark_runs(path: str | os.PathLike[str]) -> list[BenchRun]:
    """A JSON file, or every ``*.json`` in a folder (repeated runs of one suite)."""
    p = Path(path)
    if p.is_dir():
        files = sorted(p.glob("*.json"))
        if not files:
            raise BenchJsonError(f"{p}: folder holds no .json files")
        return [load_benchmark_json(f) for f in files]
    return [load_benchmark_json(p)]


def without_raw_timings(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of pytest-benchmark JSON without each round's timing (``stats.data``).

    ``--benchmark-json`` keeps every round (over 1 MB for this suite); the
    comparison needs only the summary statistics, so a baseline worth
    committing drops the rest.
    """
    out = dict(data)
    out["benchmarks"] = [{**bench, "stats": {k: v for k, v in bench.get("stats", {}).items()
                                             if k != "data"}}
                         for bench in data.get("benchmarks", [])]
    return out


# --------------------------------------------------------------------------
# Normalising
# --------------------------------------------------------------------------
def find_calibration(results: Sequence[BenchResult]) -> BenchResult | None:
    """The run's calibration benchmark (the first one, if several)."""
    return next((r for r in results if r.is_calibration), None)


def normalised_medians(run: BenchRun) -> dict[str, float | None]:
    """fullname -> median / calibration median (None when the run has no calibration)."""
    calibration = run.calibration
    run_level = calibration.median_s if calibration and calibration.median_s > 0 else None
    out: dict[str, float | None] = {}
    for r in run.results:
        divisor = r.local_calibration_s or run_level
        out[r.fullname] = r.median_s / divisor if divisor else None
    return out


_CALIBRATION_KEYS = ("calibration_s", "calibration_before_s", "calibration_after_s")


def scaled_run(run: BenchRun, factor: float, *, include_calibration: bool = True) -> BenchRun:
    """The same run with every time multiplied by ``factor``: a uniformly slower machine.

    With ``include_calibration=False`` the calibration figures stay as they
    were: the code under test alone got ``factor`` times slower.
    """
    def scale(r: BenchResult) -> BenchResult:
        extra = dict(r.extra_info)
        if include_calibration:
            extra.update({k: extra[k] * factor for k in _CALIBRATION_KEYS
                          if isinstance(extra.get(k), int | float)})
        if r.is_calibration and not include_calibration:
            return BenchResult(r.name, r.fullname, r.group, r.params, r.median_s, r.mean_s, r.min_s,
                               r.max_s, r.stddev_s, r.rounds, r.ops, extra)
        return BenchResult(r.name, r.fullname, r.group, r.params, r.median_s * factor,
                           r.mean_s * factor, r.min_s * factor, r.max_s * factor,
                           r.stddev_s * factor, r.rounds, r.ops / factor, extra)
    return BenchRun(tuple(scale(r) for r in run.results), f"{run.source} x{factor:g}",
                    run.datetime, run.machine_info, run.commit_info, run.harness)


# --------------------------------------------------------------------------
# Comparing
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class _Side:
    """One side of a comparison: one run, or the best of several repeated runs."""

    results: dict[str, BenchResult]       # fullname -> the first run's entry (names, groups)
    medians: dict[str, float]             # fullname -> lowest median over the runs
    normalised: dict[str, float | None]   # fullname -> lowest normalised median over the runs
    calibration_s: float | None           # lowest calibration-benchmark median over the runs
    source: str


def _side(runs: BenchRun | Sequence[BenchRun]) -> _Side:
    # Interference on a shared machine only ever adds time, so the lowest of
    # several runs' figures is the best estimate of the code's own speed; a
    # real slowdown is in every run and survives the minimum.
    run_list = [runs] if isinstance(runs, BenchRun) else list(runs)
    if not run_list:
        raise BenchJsonError("no benchmark runs to compare")
    results: dict[str, BenchResult] = {}
    medians: dict[str, float] = {}
    normalised: dict[str, float | None] = {}
    calibrations = []
    for run in run_list:
        if run.calibration is not None and run.calibration.median_s > 0:
            calibrations.append(run.calibration.median_s)
        for fullname, value in normalised_medians(run).items():
            if value is not None:
                best = normalised.get(fullname)
                normalised[fullname] = value if best is None else min(best, value)
            else:
                normalised.setdefault(fullname, None)
        for r in run.results:
            results.setdefault(r.fullname, r)
            medians[r.fullname] = min(medians.get(r.fullname, r.median_s), r.median_s)
    source = run_list[0].source if len(run_list) == 1 else (
        f"best of {len(run_list)} runs: {', '.join(r.source for r in run_list)}")
    return _Side(results, medians, normalised, min(calibrations) if calibrations else None, source)


def _ratio(new: float | None, old: float | None) -> float | None:
    return new / old if new is not None and old else None


def compare_runs(baseline: BenchRun | Sequence[BenchRun], current: BenchRun | Sequence[BenchRun],
                 threshold: float = DEFAULT_THRESHOLD, *, normalise: bool = True) -> Comparison:
    """Pair benchmarks by fullname and judge each one.

    Each side is one run or several repeated runs of the same suite (then each
    benchmark counts with its lowest figure).  A benchmark is ``slower`` when
    its normalised median grew by more than ``threshold`` (0.5 = 50 %),
    ``faster`` when it shrank by as much, else ``ok``; ``missing`` / ``new``
    when only one side has it (reported, never failing: a run may select a
    subset with ``-k``).  With ``normalise`` (the default) every compared
    benchmark needs a calibration, or BenchJsonError says which side lacks it.
    """
    if threshold <= 0:
        raise BenchJsonError(f"threshold must be positive, got {threshold:g}")
    old, new = _side(baseline), _side(current)
    figure_old = old.normalised if normalise else dict(old.medians)
    figure_new = new.normalised if normalise else dict(new.medians)
    if normalise:
        for side, figures in ((old, figure_old), (new, figure_new)):
            if any(v is None for v in figures.values()):
                raise BenchJsonError(f"{side.source or 'a run'}: no calibration benchmark "
                                     f"(group {CALIBRATION_GROUP!r}), so it cannot be normalised")

    rows = []
    for fullname in list(old.results) + [n for n in new.results if n not in old.results]:
        either = new.results.get(fullname) or old.results[fullname]
        before, after = figure_old.get(fullname), figure_new.get(fullname)
        ratio = _ratio(after, before)
        if either.is_calibration:
            status = "calibration"
        elif fullname not in new.results:
            status = "missing"
        elif fullname not in old.results:
            status = "new"
        elif ratio is not None and ratio > 1 + threshold:
            status = "slower"
        elif ratio is not None and ratio < 1 / (1 + threshold):
            status = "faster"
        else:
            status = "ok"
        rows.append(ComparisonRow(
            fullname=fullname, name=either.name, group=either.group, status=status,
            baseline_median_s=old.medians.get(fullname), current_median_s=new.medians.get(fullname),
            baseline_normalised=before if normalise else None,
            current_normalised=after if normalise else None,
            ratio=ratio, raw_ratio=_ratio(new.medians.get(fullname), old.medians.get(fullname)),
        ))
    # Failures first, then what only one side has, then the rest, worst first.
    rank = {"slower": 0, "missing": 1, "new": 1, "calibration": 3}
    rows.sort(key=lambda r: (rank.get(r.status, 2), -(r.ratio or 0.0)))
    return Comparison(rows=tuple(rows), threshold=threshold, normalised=normalise,
                      baseline_calibration_s=old.calibration_s,
                      current_calibration_s=new.calibration_s,
                      baseline_source=old.source, current_source=new.source)


# --------------------------------------------------------------------------
# Into the shared results format (reports/FORMAT.md, kind "bench")
# --------------------------------------------------------------------------
def to_results_document(run: BenchRun, *, tool: str = "pytest-benchmark",
                        target: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``bench`` results document for ``run`` (see reports/FORMAT.md)."""
    normalised = normalised_medians(run)
    calibration = run.calibration
    records = [{
        "name": r.name, "fullname": r.fullname, "group": r.group, "params": dict(r.params),
        "mean_s": r.mean_s, "median_s": r.median_s, "min_s": r.min_s, "stddev_s": r.stddev_s,
        "rounds": r.rounds, "ops": r.ops, "normalised": normalised.get(r.fullname),
        "extra_info": dict(r.extra_info),
    } for r in run.results]
    summary = {
        "calibration": ({"name": calibration.name, "median_s": calibration.median_s}
                        if calibration else None),
        "benchmarks": len(records),
    }
    label = (target or {}).get("label") or "benchmarks"
    return make_document("bench", tool=tool, summary=summary, records=records,
                         target=target or {"label": label, "address": None, "command": None},
                         source=run.source, benchmark_datetime=run.datetime)
