"""Latency histograms for the load generators.

* :class:`LatencyHistogram` wraps an HDR histogram (the ``hdrhistogram``
  package) in microseconds: it records, summarises as the results format's
  ``{p50, p90, p99, p99_9, max, mean, count}``, and round-trips through
  ``encode()``/``decode()`` so histograms from several processes merge exactly.

Per-sender delivery accounting (lost, duplicated, reordered, mislabelled,
unpaired) is ``reference.sequence``, shared with the conformance suite.

Pure bookkeeping: no sockets, no clocks, no asyncio.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

from reports.results import PERCENTILES

__all__ = ["LatencyHistogram", "load_average", "merge_encoded"]

#: 1 us .. 100 s at three significant digits: covers a stalled server without clipping.
_LOWEST_US = 1
_HIGHEST_US = 100_000_000
_SIGNIFICANT_DIGITS = 3
#: log2 of HDR's sub-bucket count for 3 significant digits (2048): values below
#: 2**11 us are exact, wider ones share a cell 2**(bit_length - 11) wide.
_SUB_BUCKET_BITS = 11


class LatencyHistogram:
    """An HDR histogram of latencies in microseconds.

    ``record_ns`` is on every receiver's hot path, and the package's
    ``record_value`` is pure Python and slow, so values are first counted per
    HDR bucket in a dict (the bucket's lowest value as key: the same cell
    HDR would pick, so nothing is rounded differently) and folded into the
    histogram when it is read.
    """

    __slots__ = ("_hist", "_pending", "clipped")

    def __init__(self) -> None:
        self._hist = HdrHistogram(_LOWEST_US, _HIGHEST_US, _SIGNIFICANT_DIGITS)
        self._pending: dict[int, int] = {}
        self.clipped = 0  # values above the histogram's range, recorded as its maximum

    def record_ns(self, ns: int) -> None:
        """Record one latency given in nanoseconds (negative clock skew counts as 0)."""
        us = ns // 1000
        if us < _LOWEST_US:
            us = _LOWEST_US
        elif us > _HIGHEST_US:
            us = _HIGHEST_US
            self.clipped += 1
        shift = us.bit_length() - _SUB_BUCKET_BITS
        if shift > 0:  # HDR keeps 11 significant bits: cells this wide share one count
            us = us >> shift << shift
        pending = self._pending
        pending[us] = pending.get(us, 0) + 1

    @property
    def hist(self) -> HdrHistogram:
        """The HDR histogram itself, with everything recorded so far."""
        if self._pending:
            record = self._hist.record_value
            for us, count in self._pending.items():
                record(us, count)
            self._pending.clear()
        return self._hist

    @property
    def count(self) -> int:
        return int(self.hist.get_total_count())

    def summary(self) -> dict[str, Any]:
        """The results format's latency block; all None when nothing was recorded."""
        if self.count == 0:
            return {**{k: None for k in PERCENTILES}, "max": None, "mean": None, "count": 0}
        out: dict[str, Any] = {k: int(self.hist.get_value_at_percentile(p))
                               for k, p in PERCENTILES.items()}
        out["max"] = int(self.hist.get_max_value())
        out["mean"] = round(float(self.hist.get_mean_value()), 1)
        out["count"] = self.count
        return out

    def encode(self) -> str:
        """Base64 text of the compressed histogram (HdrHistogram's own encoding)."""
        raw = self.hist.encode()
        return raw.decode("ascii") if isinstance(raw, bytes) else str(raw)

    def add_encoded(self, encoded: str) -> None:
        """Merge a histogram produced by :meth:`encode` (exactly, bucket by bucket)."""
        if encoded:
            self.hist.decode_and_add(encoded)

    def add(self, other: LatencyHistogram) -> None:
        self.hist.add(other.hist)
        self.clipped += other.clipped


def merge_encoded(encoded: list[str]) -> LatencyHistogram:
    """One histogram holding every value of the encoded ones."""
    merged = LatencyHistogram()
    for text in encoded:
        merged.add_encoded(text)
    return merged


def load_average() -> float:
    """The machine's 1-minute load average; 0.0 on Windows, which keeps none.

    An ``if`` on ``sys.platform``, not a conditional expression, so that mypy's
    ``--platform win32`` check sees that ``os.getloadavg`` is never called there.
    """
    if sys.platform == "win32":
        return 0.0
    return os.getloadavg()[0]
