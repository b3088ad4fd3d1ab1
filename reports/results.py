"""The one results format shared by conformance, load and bench outputs.

A results document is a JSON object (see reports/FORMAT.md for every field)::

    {
      "format": "chat-harness-results",
      "version": 1,
      "kind": "conformance" | "latency" | "limits" | "soak" | "bench",
      "tool": "chat-conformance 0.1.0",
      "created": "2026-11-25T09:00:00+00:00",
      "target": {"label": ..., "address": "127.0.0.1:40123", "command": ... | null},
      "environment": {"python": ..., "platform": ..., "cpus": 2, "hostname": ...},
      "summary": {...},          # kind-specific, flat, small
      "records": [ {...}, ... ]  # kind-specific: one per case / scenario / step / benchmark
    }

Producers build documents with :func:`make_document` and save them with
:func:`write_document`; consumers call :func:`load_document`, which checks
the format name and version and says in one line what is wrong.
This module has no third-party dependencies so every producer may import it.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import socket
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from reference.printable import printable_tree

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "KINDS",
    "PERCENTILES",
    "ResultsError",
    "check_structure",
    "environment",
    "json_option",
    "load_document",
    "make_document",
    "percentile_label",
    "target_info",
    "write_document",
    "write_text_atomic",
]

FORMAT_NAME = "chat-harness-results"
FORMAT_VERSION = 1
KINDS = ("conformance", "latency", "limits", "soak", "bench", "locust")
#: The percentiles of every latency block (``latency_us``: key -> percent), in order: the one
#: list that chat-load's histogram, the locust integration, the tables and the plots all use.
PERCENTILES: Mapping[str, float] = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99_9": 99.9}


def json_option(kind: str | None = None, what: str = "the results document") -> dict[str, Any]:
    """The ``--json FILE`` option of every tool that writes a results document, declared once.

    Keyword arguments for argparse's ``add_argument`` or pytest's ``addoption``;
    ``kind`` is named in the help unless the tool writes several kinds.
    """
    kind_words = f"kind '{kind}', " if kind else ""
    return {"metavar": "FILE", "default": None,
            "help": f"write {what} ({kind_words}reports/FORMAT.md) to FILE"}


def percentile_label(key: str) -> str:
    """How a table or plot names a percentile key: ``p99_9`` -> ``p99.9``."""
    return f"p{PERCENTILES[key]:g}"

Document = dict[str, Any]


class ResultsError(ValueError):
    """A file is not a results document this version can read."""


def environment() -> dict[str, Any]:
    """Where the numbers were measured."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "hostname": socket.gethostname(),
    }


def target_info(label: str, address: tuple[str, int] | None = None,
                command: str | None = None) -> dict[str, Any]:
    """The ``target`` block: which server the results are about."""
    return {
        "label": label,
        "address": f"{address[0]}:{address[1]}" if address else None,
        "command": command,
    }


def make_document(kind: str, *, tool: str, target: Mapping[str, Any],
                  summary: Mapping[str, Any], records: Sequence[Mapping[str, Any]],
                  **extra: Any) -> Document:
    """Assemble a results document; ``extra`` keys go at the top level."""
    if kind not in KINDS:
        raise ValueError(f"unknown results kind {kind!r}; expected one of {', '.join(KINDS)}")
    doc: Document = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "kind": kind,
        "tool": tool,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "argv": list(sys.argv),
        "target": dict(target),
        "environment": environment(),
        "summary": dict(summary),
        "records": [dict(r) for r in records],
    }
    doc.update(extra)
    return doc


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` all at once: a reader (or a run killed midway) sees the old
    file or the new one, never half of one.  Creates parent folders.

    Every report, results file and baseline the harness writes goes through here:
    a uniquely named temporary file in the same folder, flushed, then os.replace.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def write_document(path: str | os.PathLike[str], doc: Mapping[str, Any]) -> Path:
    """Write ``doc`` as indented JSON, atomically; every string in it made printable."""
    text = json.dumps(printable_tree(doc), indent=2, ensure_ascii=False, default=str) + "\n"
    return write_text_atomic(path, text)


def load_document(path: str | os.PathLike[str], kind: str | None = None) -> Document:
    """Read and check a results document; raise ResultsError in plain words."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsError(f"{p}: not readable JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise ResultsError(f"{p}: not a {FORMAT_NAME} document")
    version = doc.get("version")
    if version != FORMAT_VERSION:
        raise ResultsError(f"{p}: results format version {version!r}, this tool reads "
                           f"version {FORMAT_VERSION}")
    if kind is not None and doc.get("kind") != kind:
        raise ResultsError(f"{p}: holds {doc.get('kind')!r} results, expected {kind!r}")
    check_structure(doc, str(p))
    return doc


def check_structure(doc: Mapping[str, Any], source: str) -> None:
    """Raise ResultsError unless ``doc`` has the shape every reader relies on.

    The fields inside a record are checked where they are read (a renderer
    that meets a wrong type raises, and chat-report turns that into one line).
    """
    if doc.get("kind") not in KINDS:
        raise ResultsError(f"{source}: unknown kind {doc.get('kind')!r} (one of {', '.join(KINDS)})")
    for name, expected in (("summary", dict), ("records", list), ("target", dict)):
        if name in doc and doc[name] is not None and not isinstance(doc[name], expected):
            raise ResultsError(f"{source}: {name!r} is a {type(doc[name]).__name__}, not a "
                               f"{expected.__name__}: the file is damaged or not written by chat-harness")
    if not isinstance(doc.get("summary"), dict) or not isinstance(doc.get("records"), list):
        raise ResultsError(f"{source}: 'summary' or 'records' is missing: the file is incomplete")
    bad = next((i for i, r in enumerate(doc["records"]) if not isinstance(r, dict)), None)
    if bad is not None:
        raise ResultsError(f"{source}: record {bad} is a {type(doc['records'][bad]).__name__}, "
                           "not an object: the file is damaged")
