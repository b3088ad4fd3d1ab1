"""The ``--chat-*`` options of the locust swarm, defined once for locust and for tests.

locust adds these to its own parser (``init_command_line_parser`` in
``loadtest.swarm.users``), so they work on the command line, in the web UI's
"custom parameters", and in the ``[tool.locust]`` table of pyproject.toml,
which holds the project's defaults.  The argparse defaults below are the same
values, for runs outside this checkout; a test keeps the two in step.

Nothing below the parser reads argv: :meth:`ChatOptions.from_namespace` turns
the parsed options into one frozen object.  No locust import here.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from reference.cli_args import finite_number

__all__ = ["ChatOptions", "add_chat_options"]


@dataclass(frozen=True)
class ChatOptions:
    """What every swarm user needs to know, parsed once."""

    size: int = 64            # payload bytes, stamp included
    rate: float = 1.0         # messages per second per chatter
    timeout: float = 10.0     # seconds a connect or send may take
    slow_delay: float = 0.05  # seconds a slow reader waits after each message
    loss_grace: float = 2.0   # seconds a skipped message may be late before it is lost
    json: str | None = None   # write a chat-harness results document here

    @classmethod
    def from_namespace(cls, namespace: Any) -> ChatOptions:
        """Read ``chat_*`` attributes (missing ones keep their defaults) and check them.

        The web UI can hand values in that never met the argparse types, so
        they are converted and checked again here; ValueError says what is wrong.
        """
        values: dict[str, Any] = {}
        for spec in _OPTIONS:
            raw = getattr(namespace, f"chat_{spec.dest}", None) if namespace is not None else None
            if raw is None:
                continue
            if spec.convert is None:
                values[spec.dest] = str(raw) or None
                continue
            try:
                values[spec.dest] = spec.convert(str(raw))
            except argparse.ArgumentTypeError as exc:
                raise ValueError(f"--chat-{spec.flag}: {exc}") from None
        return cls(**values)


@dataclass(frozen=True)
class _OptionSpec:
    dest: str
    convert: Any
    metavar: str
    help: str

    @property
    def flag(self) -> str:
        return self.dest.replace("_", "-")


_OPTIONS = (
    _OptionSpec("size", finite_number(int), "BYTES",
                "payload size of each message, its stamp included"),
    _OptionSpec("rate", finite_number(float), "PER_S",
                "messages per second each chatter sends"),
    _OptionSpec("timeout", finite_number(float), "SECONDS",
                "longest a connect or a send may take before it fails"),
    _OptionSpec("slow_delay", finite_number(float, zero_ok=True), "SECONDS",
                "a slow reader's pause after each message it reads"),
    _OptionSpec("loss_grace", finite_number(float), "SECONDS",
                "how late a skipped message may arrive before it counts as lost"),
    _OptionSpec("json", None, "FILE",
                "write the swarm's results (chat-harness format, kind 'locust') to FILE"),
)


def add_chat_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--chat-*`` to ``parser`` (locust's or a plain argparse one)."""
    defaults = ChatOptions()
    for spec in _OPTIONS:
        default = getattr(defaults, spec.dest)
        parser.add_argument(
            f"--chat-{spec.flag}", dest=f"chat_{spec.dest}", metavar=spec.metavar,
            type=spec.convert or str, default=default,
            help=spec.help + ("" if default is None else " (default %(default)s)"))
