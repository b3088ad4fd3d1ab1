"""The tool version, read once from the installed package's metadata (never written twice).

``pyproject.toml`` is the only place the version is written; every console script's
``--version`` and every results document's ``tool`` field come from here.
"""

from __future__ import annotations

import argparse
from importlib import metadata

__all__ = ["add_version_argument", "package_version", "tool_name"]

DISTRIBUTION = "chat-harness"


def package_version() -> str:
    """The installed chat-harness version, or ``"unknown"`` when run from an uninstalled tree."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"


def tool_name(prog: str) -> str:
    """``"chat-load 0.1.0"``: what a results document's ``tool`` field says."""
    return f"{prog} {package_version()}"


def add_version_argument(parser: argparse.ArgumentParser) -> None:
    """``--version``: print ``PROG VERSION`` and exit 0, like every console script here."""
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}",
                        help="print the version and exit")
