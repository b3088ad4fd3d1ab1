"""Same-run ratios: the target server against each baseline server, benchmark by benchmark.

bench/ runs every server benchmark against the target (``server=reference``
or ``server=target``) and against baseline servers (``server=naive``, and
for some ``server=asyncio``) in the same pytest run.  Dividing the target's
figure by a baseline's cancels what both paid alike -- the machine, its load
at that minute, the client -- and leaves the servers' difference: a ratio
under 1.0 means the target did better.

A benchmark's figure is its median time per round, unless it names another
one in ``extra_info``: ``figure`` (a number, lower is better, e.g. server CPU
seconds per delivery) and ``figure_name``.  Used by bench/conftest.py (printed
after the run, stored in the JSON) and by the gate, bench/compare.py, which
fails when a ratio -- or a figure in ``WATCHED_FIGURES``, such as the server's
memory per idle client -- got worse than the baseline run's by more than its
threshold.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reports.benchjson import BenchRun

__all__ = ["PAIRED_FIGURE", "TARGET_KINDS", "WATCHED_FIGURES", "Point", "RatioChange", "SameRunRatio",
           "compare_ratios", "point", "ratio_key", "ratios_of_run", "same_run_ratios"]

#: The ``server`` parameter of the server under test; any other value is a baseline.
TARGET_KINDS = ("reference", "target")


@dataclass(frozen=True)
class SameRunRatio:
    """One benchmark's target figure over one baseline's, from the same run."""

    benchmark: str        # the benchmark without its server, e.g. "test_fanout_latency[1]"
    baseline: str         # "naive", "asyncio"
    figure_name: str      # "median_s" unless the benchmark chose another figure
    target_value: float
    baseline_value: float

    @property
    def ratio(self) -> float:
        return self.target_value / self.baseline_value

    @property
    def key(self) -> str:
        return f"{self.benchmark} vs {self.baseline}"

    def as_dict(self) -> dict[str, Any]:
        return {"benchmark": self.benchmark, "baseline": self.baseline,
                "figure": self.figure_name, "target": self.target_value,
                "baseline_value": self.baseline_value, "ratio": self.ratio}


@dataclass(frozen=True)
class Point:
    """One benchmark result, reduced to what a ratio needs."""

    name: str
    params: Mapping[str, Any]
    figure_name: str
    value: float
    #: A paired benchmark's own ratios (bench/paired.py): baseline -> median of per-round ratios.
    paired: Mapping[str, float] = field(default_factory=dict)


#: The figure name of a ratio a paired benchmark measured itself, round by round.
PAIRED_FIGURE = "median of per-round ratios"


def _paired(extra_info: Mapping[str, Any]) -> dict[str, float]:
    paired = extra_info.get("paired")
    if not isinstance(paired, Mapping):
        return {}
    out = {}
    for baseline, entry in paired.items():
        ratio = entry.get("ratio") if isinstance(entry, Mapping) else None
        if isinstance(ratio, int | float) and not isinstance(ratio, bool) and ratio > 0:
            out[str(baseline)] = float(ratio)
    return out


def point(name: str, params: Mapping[str, Any] | None, median_s: float,
          extra_info: Mapping[str, Any]) -> Point:
    paired = _paired(extra_info)
    figure = extra_info.get("figure")
    if isinstance(figure, int | float) and not isinstance(figure, bool) and figure > 0:
        return Point(name, params or {}, str(extra_info.get("figure_name", "figure")), float(figure),
                     paired)
    return Point(name, params or {}, "median_s", median_s, paired)


def ratio_key(name: str, params: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """(benchmark without the server, server kind), or None when there is no server parameter."""
    params = params or {}
    kind = params.get("server")
    if not isinstance(kind, str):
        return None
    base = name.split("[", 1)[0]
    rest = [str(v) for k, v in params.items() if k != "server"]
    return (f"{base}[{'-'.join(rest)}]" if rest else base), kind


def same_run_ratios(points: Iterable[Point]) -> list[SameRunRatio]:
    """Every (target, baseline) pair of the same benchmark, in the order the targets came."""
    targets: dict[str, Point] = {}
    baselines: dict[str, dict[str, Point]] = {}
    out = []
    for p in points:
        # A paired benchmark measured target and baselines itself, round by round.
        out += [SameRunRatio(p.name, kind, PAIRED_FIGURE, ratio, 1.0) for kind, ratio in p.paired.items()]
        split = ratio_key(p.name, p.params)
        if split is None or p.value <= 0:
            continue
        bench, kind = split
        if kind in TARGET_KINDS:
            targets[bench] = p
        else:
            baselines.setdefault(bench, {})[kind] = p
    for bench, target in targets.items():
        for kind, base in baselines.get(bench, {}).items():
            if base.figure_name == target.figure_name:
                out.append(SameRunRatio(bench, kind, target.figure_name, target.value, base.value))
    return out


def ratios_of_run(run: BenchRun) -> list[SameRunRatio]:
    return same_run_ratios(point(r.name, r.params, r.median_s, r.extra_info) for r in run.results)


@dataclass(frozen=True)
class RatioChange:
    """A same-run ratio in the baseline runs and in the current runs (best of each side)."""

    key: str
    baseline_ratio: float | None
    current_ratio: float | None
    slower: bool          # the current ratio is worse than the baseline's beyond the threshold


#: Figures a benchmark records in ``extra_info`` that the gate also watches (lower is better).
WATCHED_FIGURES = ("bytes_per_idle_client",)


def _best(runs: Sequence[BenchRun]) -> dict[str, float]:
    """Each same-run ratio and each watched figure over ``runs``.

    A ratio is the target's best (lowest) figure over the runs divided by the
    baseline's best: noise only adds time to either, so each best is the
    closest to its true value, while the lowest of the per-run ratios would
    reward a run in which the *baseline* was slowed down.
    """
    best: dict[str, float] = {}
    pairs: dict[str, tuple[float, float]] = {}

    def keep(key: str, value: float) -> None:
        best[key] = min(best.get(key, value), value)

    for run in runs:
        for r in ratios_of_run(run):
            top, bottom = pairs.get(r.key, (r.target_value, r.baseline_value))
            pairs[r.key] = (min(top, r.target_value), min(bottom, r.baseline_value))
        for b in run.results:
            for name in WATCHED_FIGURES:
                value = b.extra_info.get(name)
                if isinstance(value, int | float) and value > 0:
                    keep(f"{b.name} {name}", float(value))
    best.update((key, top / bottom) for key, (top, bottom) in pairs.items())
    return best


def compare_ratios(baseline: Sequence[BenchRun], current: Sequence[BenchRun],
                   threshold: float) -> list[RatioChange]:
    """Each ratio and watched figure of either side; ``slower``: current > baseline * (1 + threshold).

    Each side counts with its best figures (see ``_best``): a real regression
    is worse in every run.
    """
    old, new = _best(baseline), _best(current)
    rows = []
    for key in sorted(old.keys() | new.keys()):
        before, after = old.get(key), new.get(key)
        slower = before is not None and after is not None and after > before * (1 + threshold)
        rows.append(RatioChange(key, before, after, slower))
    return rows
