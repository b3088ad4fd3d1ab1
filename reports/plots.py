"""Plots for the HTML report, drawn by matplotlib (Agg) into PNG bytes.

Where a picture says more than a table:

* :func:`latency_sweep_plot`: latency percentiles against the number of clients
  (a ``latency`` document from a sweep, one record per client count);
* :func:`latency_distribution_plot`: the latency distribution by percentile,
  one curve per scenario, from the HDR histogram when the record carries one
  (``latency_hist``) and from its summary percentiles otherwise;
* :func:`limits_ramp_plot`: clients held during the limits ramp, and the probe
  latency at each step;
* :func:`bench_plot`: benchmark medians as multiples of the calibration.

Each returns a :class:`Plot` or None when the document has too little data
for the picture to mean anything.  Figures are built with the object API
(``matplotlib.figure.Figure`` on an Agg canvas), never pyplot, so no global
figure state or GUI backend is involved.  matplotlib is imported on the first
figure, not with this module: it costs about a second, and ``chat-report``'s
other commands (``show``, ``compare``, ``--help``) draw nothing.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reports.results import PERCENTILES

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "Plot",
    "bench_plot",
    "distribution_points",
    "latency_distribution_plot",
    "latency_sweep_plot",
    "limits_ramp_plot",
    "plots_for",
]

Document = Mapping[str, Any]
_PERCENTILES = tuple(PERCENTILES.items())
_DPI = 100


@dataclass(frozen=True)
class Plot:
    """A finished picture: a title, PNG bytes and a caption saying how to read it."""

    title: str
    png: bytes
    caption: str = ""


def _figure(figsize: tuple[float, float]) -> Figure:
    """A new figure on an Agg canvas; the first call imports matplotlib."""
    import matplotlib

    matplotlib.use("Agg")  # no display: the HTML report is written headless, in CI too
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _to_png(fig: Figure) -> bytes:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)
    return buf.getvalue()


def _new_figure() -> tuple[Figure, Any]:
    fig = _figure((8, 4.2))
    ax = fig.add_subplot()
    ax.grid(True, which="both", alpha=0.3)
    return fig, ax


def _plain_numbers(axis: Any) -> None:
    """Label an axis 0.5, 1, 2 rather than 10^0, 10^1, minor ticks unlabelled."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def _log_y(ax: Any) -> None:
    """Log latency axis labelled 0.5, 1, 2, 5, 10 rather than 10^0, 10^1 (often only one in range)."""
    from matplotlib.ticker import LogLocator

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    _plain_numbers(ax.yaxis)


def _ms(value_us: Any) -> float | None:
    return value_us / 1000.0 if isinstance(value_us, int | float) and value_us > 0 else None


def latency_sweep_plot(doc: Document) -> Plot | None:
    """Percentiles against clients; needs at least two scenarios with different client counts."""
    records = sorted((r for r in doc.get("records") or [] if isinstance(r.get("clients"), int)),
                     key=lambda r: r["clients"])
    if len({r["clients"] for r in records}) < 2:
        return None
    from matplotlib.ticker import FixedLocator

    fig, ax = _new_figure()
    clients = [r["clients"] for r in records]
    for key, label in (*((k, f"p{p:g}") for k, p in _PERCENTILES), ("max", "max")):
        values = [_ms((r.get("latency_us") or {}).get(key)) for r in records]
        if any(v is not None for v in values):
            ax.plot(clients, [math.nan if v is None else v for v in values], marker="o",
                    linestyle="--" if key == "max" else "-", label=label)
    ax.set_xscale("log")
    _log_y(ax)
    ax.xaxis.set_major_locator(FixedLocator(clients))
    _plain_numbers(ax.xaxis)
    ax.set_xlabel("clients in the room")
    ax.set_ylabel("one-way delivery latency (ms)")
    ax.set_title("Latency percentiles vs clients")
    ax.legend(loc="best", fontsize="small")
    return Plot("Latency percentiles vs clients", _to_png(fig),
                "Each line is one percentile of the one-way delivery latency, measured at each client "
                "count of the sweep. Lines that climb steeply show where the server stops keeping up.")


def distribution_points(record: Mapping[str, Any]) -> list[tuple[float, float]]:
    """(percentile, latency_us) points for one scenario: from the HDR histogram if present."""
    encoded = record.get("latency_hist")
    if encoded:
        try:
            from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

            hist = HdrHistogram.decode(encoded.encode() if isinstance(encoded, str) else encoded)
            if hist.get_total_count() > 0:
                grid = [50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.999]
                points = [(p, float(hist.get_value_at_percentile(p))) for p in grid]
                points.append((100.0, float(hist.get_max_value())))
                return points
        except Exception:  # noqa: BLE001 -- a bad or foreign histogram falls back to the summary
            pass
    latency = record.get("latency_us") or {}
    points = [(p, float(latency[k])) for k, p in _PERCENTILES if isinstance(latency.get(k), int | float)]
    if isinstance(latency.get("max"), int | float):
        points.append((100.0, float(latency["max"])))
    return points


def _nines(percentile: float, cap: float) -> float:
    """Percentile -> -log10(1 - p): 90% -> 1, 99% -> 2, 99.9% -> 3 (100% drawn at ``cap``)."""
    return cap if percentile >= 100.0 else -math.log10(1.0 - percentile / 100.0)


def latency_distribution_plot(doc: Document) -> Plot | None:
    """The latency distribution by percentile, one curve per scenario (HDR-style axis)."""
    curves = [(r, distribution_points(r)) for r in doc.get("records") or []]
    curves = [(r, pts) for r, pts in curves if len(pts) >= 2]
    if not curves:
        return None
    from matplotlib.ticker import FixedLocator, FuncFormatter

    fig, ax = _new_figure()
    cap = 5.0
    for record, points in curves:
        xs = [_nines(p, cap) for p, _ in points]
        ys = [v / 1000.0 for _, v in points]
        label = f"{record.get('clients', '?')} clients"
        if isinstance(record.get("rate"), int | float):
            label += f", {record['rate']:g}/s"
        ax.plot(xs, ys, marker=".", label=label)
    ticks = [0.301, 1, 2, 3, 4, cap]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(
        lambda x, _pos: "max" if x >= cap else f"{100 * (1 - 10 ** -x):.4g}%"))
    ax.set_xlim(0.25, cap + 0.2)
    _log_y(ax)
    ax.set_xlabel("percentile")
    ax.set_ylabel("one-way delivery latency (ms)")
    ax.set_title("Latency distribution")
    ax.legend(loc="best", fontsize="small")
    source = "HDR histogram" if any(r.get("latency_hist") for r, _ in curves) else "summary percentiles"
    return Plot("Latency distribution", _to_png(fig),
                f"Latency by percentile ({source}); the x axis stretches the tail so that 99%, 99.9% "
                "and 99.99% are equally far apart. A flat curve means predictable latency.")


def limits_ramp_plot(doc: Document) -> Plot | None:
    """Clients held at each ramp step, healthy steps green, the failing one red."""
    records = [r for r in doc.get("records") or [] if isinstance(r.get("clients"), int)]
    if not records:
        return None
    fig, ax = _new_figure()
    xs = [float(r.get("elapsed_s") or i) for i, r in enumerate(records)]
    clients = [r["clients"] for r in records]
    ax.step(xs, clients, where="post", color="tab:blue", label="clients held")
    healthy = [bool(r.get("healthy")) for r in records]
    ax.scatter([x for x, h in zip(xs, healthy, strict=True) if h],
               [c for c, h in zip(clients, healthy, strict=True) if h], color="tab:green", zorder=3,
               label="healthy step")
    ax.scatter([x for x, h in zip(xs, healthy, strict=True) if not h],
               [c for c, h in zip(clients, healthy, strict=True) if not h], color="tab:red", marker="X",
               s=80, zorder=3, label="unhealthy step")
    summary = doc.get("summary") or {}
    if isinstance(summary.get("highest_healthy"), int):
        ax.axhline(summary["highest_healthy"], color="tab:gray", linestyle=":",
                   label=f"highest healthy: {summary['highest_healthy']} ({summary.get('cause', '?')})")
    ax.set_xlabel("time into the ramp (s)")
    ax.set_ylabel("registered clients")
    ax.set_ylim(bottom=0)
    probe = [r.get("probe_latency_ms") for r in records]
    if any(isinstance(p, int | float) for p in probe):
        twin = ax.twinx()
        twin.plot(xs, [p if isinstance(p, int | float) else math.nan for p in probe], color="tab:orange",
                  marker=".", linestyle="--", label="probe latency")
        twin.set_ylabel("probe message latency (ms)", color="tab:orange")
        twin.set_ylim(bottom=0)
    ax.set_title("Clients held during the limits ramp")
    ax.legend(loc="upper left", fontsize="small")
    return Plot("Clients held during the limits ramp", _to_png(fig),
                "The probe adds clients step by step and checks after each step that a message still "
                "crosses the room; the dotted line is the last step that was healthy.")


def bench_plot(doc: Document) -> Plot | None:
    """Horizontal bars: each benchmark's median as a multiple of the calibration median."""
    rows = [r for r in doc.get("records") or [] if isinstance(r.get("normalised"), int | float)]
    if not rows:
        return None
    rows.sort(key=lambda r: (str(r.get("group") or ""), str(r.get("name"))))
    fig = _figure((8, max(2.5, 0.3 * len(rows) + 1)))
    ax = fig.add_subplot()
    ax.barh([str(r.get("name")) for r in rows], [r["normalised"] for r in rows], color="tab:blue")
    ax.invert_yaxis()
    ax.set_xscale("log")
    _plain_numbers(ax.xaxis)
    ax.set_xlabel("median / calibration median")
    ax.set_title("Benchmarks, normalised by the calibration")
    ax.tick_params(axis="y", labelsize="small")
    return Plot("Benchmarks", _to_png(fig),
                "Machine-independent cost of each benchmark: how many calibration round trips it takes.")


def plots_for(doc: Document) -> list[Plot]:
    """Every plot that suits this document's kind and data."""
    kind = doc.get("kind")
    makers: Sequence[Any] = {
        "latency": (latency_sweep_plot, latency_distribution_plot),
        "limits": (limits_ramp_plot,),
        "bench": (bench_plot,),
    }.get(str(kind), ())
    return [plot for plot in (make(doc) for make in makers) if plot is not None]
