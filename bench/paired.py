"""Paired, interleaved measurement: the target and its baselines, round by round.

A benchmark that times each server in its own stretch of the run (every
``[reference-*]`` test, then every ``[naive-*]`` one) compares moments as
well as servers: on a shared 2-core machine the speed changes for seconds at
a time, and the saturation ratio of two medians taken a minute apart swung
from 0.84 to 1.26 between runs of unchanged code.  Here every round measures
the target and each baseline one block each, back to back, the order
alternating from round to round; each round gives one ratio per baseline,
and the figure is the median of those per-round ratios, so a slow moment
costs one round's ratio, not the whole comparison.

:class:`PairedRounds` drives pytest-benchmark's ``pedantic``: the target's
block is the timed function (so the run's JSON keeps the target's own
timings for the regression gate) and the baselines run in ``setup`` on even
rounds, in ``teardown`` on odd ones::

    paired = PairedRounds(target_block, {"naive": naive_block})
    benchmark.pedantic(paired.target, setup=paired.setup, teardown=paired.teardown, rounds=21)
    benchmark.extra_info.update(paired.extra_info())

A block is any callable that runs some work against one server and returns
its figure for that block (lower is better): a median latency, or server CPU
seconds per delivery (:func:`cpu_per_unit`).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from bench.crowd import server_cpu_seconds

TARGET = "target"


@dataclass(frozen=True)
class PairedRatio:
    """The per-round ratios target / baseline and their median (lower: the target did better)."""

    baseline: str
    ratios: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.ratios)

    def as_extra_info(self) -> dict[str, float | int]:
        return {"ratio": round(self.median, 4), "rounds": len(self.ratios),
                "low": round(min(self.ratios), 4), "high": round(max(self.ratios), 4)}


def paired_ratio(figures: Mapping[str, Sequence[float]], baseline: str,
                 target: str = TARGET) -> PairedRatio:
    pairs = zip(figures[target], figures[baseline], strict=True)
    return PairedRatio(baseline, tuple(t / b for t, b in pairs if b > 0))


class PairedRounds:
    """The target's block and every baseline's block once per round (see the module docstring)."""

    def __init__(self, target: Callable[[], float], baselines: Mapping[str, Callable[[], float]],
                 figure_name: str) -> None:
        self._target = target
        self._baselines = dict(baselines)
        self.figure_name = figure_name
        self.figures: dict[str, list[float]] = {TARGET: [], **{name: [] for name in baselines}}
        self._round = 0

    def _run_baselines(self) -> None:
        names = list(self._baselines)
        shift = (self._round // 2) % len(names)  # several baselines: each one first in turn
        for name in names[shift:] + names[:shift]:
            self.figures[name].append(self._baselines[name]())

    def setup(self) -> None:
        if self._round % 2 == 0:
            self._run_baselines()

    def target(self) -> None:
        self.figures[TARGET].append(self._target())

    def teardown(self) -> None:
        if self._round % 2 == 1:
            self._run_baselines()
        self._round += 1

    def ratios(self) -> list[PairedRatio]:
        return [paired_ratio(self.figures, name) for name in self._baselines]

    def extra_info(self) -> dict[str, object]:
        """What the run's JSON keeps: each baseline's paired ratio, every side's median figure."""
        return {
            "paired_figure": self.figure_name,
            "paired": {r.baseline: r.as_extra_info() for r in self.ratios()},
            "paired_medians": {name: statistics.median(values)
                               for name, values in self.figures.items() if values},
        }


def cpu_per_unit(pid: int, block: Callable[[], int]) -> float:
    """Server CPU seconds per unit of ``block``'s work (it returns how many units it did)."""
    before = server_cpu_seconds(pid)
    units = block()
    after = server_cpu_seconds(pid)
    if before is None or after is None or units <= 0:
        raise RuntimeError(f"no CPU time for process {pid} (it needs Linux /proc)")
    return (after - before) / units
