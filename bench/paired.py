"""Paired, interleaved measurement: the target and its baselines, round by round.

A benchmark that times each server in its own stretch of the run (pytest-
benchmark's way: every ``[reference-*]`` test, then every ``[naive-*]`` one)
compares moments as well as servers: on a shared 2-core machine the speed
changes for seconds at a time, and a ratio of two medians taken a minute
apart swung from 0.84 to 1.26 between runs of unchanged code.  Here every
server is measured in each round, the order rotating from round to round,
and each round gives one ratio per baseline; the figure is the median of
those per-round ratios, so a slow moment costs one round's ratio, not the
whole comparison::

    figures = interleave({"reference": measure_a, "naive": measure_b}, rounds=15)
    summary = paired_ratio(figures, "reference", "naive")
    summary.median, summary.low, summary.high

``measure`` is any callable that runs one block of work against one server
and returns its figure for that block (lower is better): a median latency,
or server CPU seconds per delivery (see ``cpu_per_unit``).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from bench.crowd import server_cpu_seconds


def interleave(measures: Mapping[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Call every measure once per round, the order rotating; each one's figures, round by round."""
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    names = list(measures)
    figures: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        order = names[shift:] + names[:shift]
        if (r // len(names)) % 2:  # every other cycle backwards: no server always follows another
            order.reverse()
        for name in order:
            figures[name].append(measures[name]())
    return figures


@dataclass(frozen=True)
class PairedRatio:
    """The per-round ratios target / baseline and their median (lower: the target did better)."""

    target: str
    baseline: str
    ratios: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.ratios)

    @property
    def low(self) -> float:
        return min(self.ratios)

    @property
    def high(self) -> float:
        return max(self.ratios)

    def as_extra_info(self) -> dict[str, object]:
        return {"ratio": round(self.median, 4), "rounds": len(self.ratios),
                "low": round(self.low, 4), "high": round(self.high, 4)}


def paired_ratio(figures: Mapping[str, Sequence[float]], target: str, baseline: str) -> PairedRatio:
    pairs = zip(figures[target], figures[baseline], strict=True)
    return PairedRatio(target, baseline, tuple(t / b for t, b in pairs if b > 0))


def cpu_per_unit(pid: int, block: Callable[[], int]) -> float:
    """Server CPU seconds per unit of ``block``'s work (it returns how many units it did)."""
    before = server_cpu_seconds(pid)
    units = block()
    after = server_cpu_seconds(pid)
    if before is None or after is None or units <= 0:
        raise RuntimeError(f"no CPU time for process {pid} (it needs Linux /proc)")
    return (after - before) / units
