"""``chat-load latency|limits --compare-tls``: the same figures over TLS next to plain TCP.

The embedded reference server is started twice in one run, once plain and once
with a throwaway certificate (``--tls-self-signed``), same build, same machine,
the same scenario run on each in turn; the document holds both runs' records
(each tagged ``transport``) and ``summary["tls_comparison"]`` puts the figures
side by side with their TLS/TCP ratio.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rich.table import Table

from reference.target import TargetSpec
from reference.tls import ClientTLS

__all__ = ["compare", "comparison_table", "tls_spec"]


def tls_spec(plain: TargetSpec) -> TargetSpec:
    """The embedded reference again, serving TLS with a throwaway certificate."""
    return dataclasses.replace(plain, tls=ClientTLS(),
                               reference_args=(*plain.reference_args, "--tls-self-signed"))


def _ratio(tls: float | None, tcp: float | None) -> float | None:
    return round(tls / tcp, 2) if tls is not None and tcp else None


def _latency_rows(tcp: list[dict[str, Any]], tls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for a, b in zip(tcp, tls, strict=False):
        row: dict[str, Any] = {"clients": a["clients"]}
        for figure in ("p50", "p99"):
            x, y = a["latency_us"].get(figure), b["latency_us"].get(figure)
            row[f"tcp_{figure}_us"], row[f"tls_{figure}_us"] = x, y
            row[f"{figure}_ratio"] = _ratio(y, x)
        row["tcp_deliveries_per_s"] = a.get("deliveries_per_s")
        row["tls_deliveries_per_s"] = b.get("deliveries_per_s")
        rows.append(row)
    return rows


def _limits_rows(tcp_summary: dict[str, Any], tls_summary: dict[str, Any],
                 tcp: list[dict[str, Any]], tls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def probe_at(records: list[dict[str, Any]], clients: int) -> float | None:
        return next((r["probe_latency_ms"] for r in records
                     if r["clients"] == clients and r["healthy"]), None)

    both = sorted({r["clients"] for r in tcp if r["healthy"]} & {r["clients"] for r in tls if r["healthy"]})
    row: dict[str, Any] = {"tcp_highest_healthy": tcp_summary.get("highest_healthy"),
                           "tls_highest_healthy": tls_summary.get("highest_healthy"),
                           "tcp_cause": tcp_summary.get("cause"), "tls_cause": tls_summary.get("cause")}
    if both:
        top = both[-1]
        x, y = probe_at(tcp, top), probe_at(tls, top)
        row.update({"clients": top, "tcp_probe_ms": x, "tls_probe_ms": y, "probe_ratio": _ratio(y, x)})
    return [row]


def compare(kind: str, tcp_doc: dict[str, Any], tls_doc: dict[str, Any]) -> dict[str, Any]:
    """One document: both runs' records, tagged, and the side-by-side figures in the summary."""
    tcp_records = [{**r, "transport": "tcp"} for r in tcp_doc["records"]]
    tls_records = [{**r, "transport": "tls"} for r in tls_doc["records"]]
    tcp_sum, tls_sum = tcp_doc["summary"], tls_doc["summary"]
    rows = (_latency_rows(tcp_doc["records"], tls_doc["records"]) if kind == "latency"
            else _limits_rows(tcp_sum, tls_sum, tcp_doc["records"], tls_doc["records"]))
    summary = {**tcp_sum, "tls": tls_sum, "tls_comparison": rows,
               "ok": bool(tcp_sum.get("ok", True) and tls_sum.get("ok", True)),
               "error": tcp_sum.get("error") or tls_sum.get("error")}
    return {**tcp_doc, "summary": summary, "records": tcp_records + tls_records}


def comparison_table(kind: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title="TLS next to plain TCP (same build, same run)", title_justify="left")
    if kind == "latency":
        for name in ("clients", "TCP p50 µs", "TLS p50 µs", "p50 TLS/TCP", "TCP p99 µs", "TLS p99 µs",
                     "p99 TLS/TCP"):
            table.add_column(name, justify="right")
        for r in rows:
            table.add_row(*(str(v) for v in (r["clients"], r["tcp_p50_us"], r["tls_p50_us"], r["p50_ratio"],
                                              r["tcp_p99_us"], r["tls_p99_us"], r["p99_ratio"])))
    else:
        for name in ("", "TCP", "TLS", "TLS/TCP"):
            table.add_column(name, justify="right")
        for r in rows:
            table.add_row("highest healthy clients", str(r["tcp_highest_healthy"]),
                          str(r["tls_highest_healthy"]), "")
            table.add_row("why the ramp stopped", str(r["tcp_cause"]), str(r["tls_cause"]), "")
            if "clients" in r:
                table.add_row(f"probe broadcast at {r['clients']:,} clients, ms", str(r["tcp_probe_ms"]),
                              str(r["tls_probe_ms"]), str(r["probe_ratio"]))
    return table
