"""What a failed case's record says happened, read back from its detail: the symptoms.

:mod:`conformance.diagnosis` groups failures by root cause; to do that from
the case records alone (the same ones the results document holds), it reads
the words that
:class:`conformance.peer.CaseFailure` and the plugin wrote: ``expected:``,
``got:``, ``note:`` and "the server died during this case: ...".  Those
phrases are produced in one place each (peer.py, plugin.py), and the tests
of this module build records with the same producers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conformance.peer import SYNC_PREFIX

__all__ = ["Symptom", "read_symptom"]

_RELAY = re.compile(r'^a relay from "(?P<sender>.*?)": "(?P<text>.*)"')
_RELAY_IN = re.compile(r'a relay from "(?P<sender>.*?)": "(?P<text>.*?)"')
#: A header inside a relayed text: the stream was cut in the wrong place (e.g. "fina3         an").
_HEADER_INSIDE = re.compile(r"\d {4,}")


@dataclass(frozen=True)
class Symptom:
    """One failed case, as the suite saw it from outside the server."""

    kind: str            # see read_symptom
    expected: str = ""
    got: str = ""
    receiver: str = ""   # the client that was waiting, when the detail names one
    sender: str = ""     # for kind "relay": who the unexpected relay claimed to be from
    text: str = ""       # for kind "relay": its text
    crash: str = ""      # the server's last stderr line when it died during the case
    at_join: bool = False  # the failure was in the registration barrier, before the case's own check
    last_action: str = ""  # for a death's own record: what a client did just before it

    @property
    def garbled(self) -> bool:
        """A relay whose text holds another frame's header: the server lost its place."""
        return self.kind == "relay" and bool(_HEADER_INSIDE.search(self.text))

    @property
    def self_relay(self) -> bool:
        """The receiver got its own message back: a relay labelled with its own name, whose text
        is not the message it was waiting for (that would be someone else's, mislabelled)."""
        expected = _RELAY_IN.search(self.expected)
        waited_for = expected.group("text") if expected else None
        return (self.kind == "relay" and bool(self.sender) and self.sender == self.receiver
                and self.text != waited_for and not self.text.startswith(SYNC_PREFIX))


def _field(lines: list[str], name: str) -> str:
    prefix = f"{name}:"
    return next((line.strip()[len(prefix):].strip() for line in lines
                 if line.strip().startswith(prefix)), "")


def read_symptom(record: Mapping[str, Any]) -> Symptom:
    """The symptom of a failed record.

    ``kind`` is one of: ``crash`` (the server died), ``timeout`` (nothing came),
    ``still-open`` (a connection the server should close stayed open),
    ``closed`` (the server closed or reset a client that did nothing wrong),
    ``send-failed`` (the server stopped reading or reset a sender),
    ``invalid-frames`` (bytes no 10-byte reader can parse), ``bad-utf8``
    (well-framed, but a payload that is not UTF-8), ``relay`` (a relay other
    than the one expected), ``header`` (a non-canonical header) or ``other``.
    """
    detail = str(record.get("detail") or "")
    lines = detail.splitlines()
    expected, got = _field(lines, "expected"), _field(lines, "got")
    died = next((line.split("died during this case:", 1)[1].strip() for line in lines
                 if "died during this case:" in line), "")
    crash = died.rsplit("last stderr line:", 1)[-1].strip() if died else ""
    if str(record.get("id") or "").startswith("crash[") and not died:
        # The crash verdict's own record (conformance.crashes): its last line is the exception.
        last = next((line.strip() for line in reversed(lines) if line.strip()), "")
        action = _field(lines, "last action before it")
        return Symptom("crash", crash=last, last_action=action)
    receiver = expected.split(" ", 1)[0] if expected else ""
    at_join = "gets registered" in expected
    relay = _RELAY.match(got)
    if died:
        kind = "crash"
    elif got.startswith("nothing within") or got == "none of them arrived":
        kind = "timeout"
    elif got.startswith("the connection still open"):
        kind = "still-open"
    elif got.startswith("the send"):
        kind = "send-failed"
    elif got.startswith("the server closed") or got.startswith("the server reset"):
        kind = "closed"
    elif got.startswith("bytes that are not valid frames"):
        kind = "invalid-frames"
    elif got.startswith("a well-framed relay"):
        kind = "bad-utf8"
    elif relay:
        kind = "relay"
    elif got.startswith("the header"):
        kind = "header"
    else:
        kind = "other"
    return Symptom(kind, expected, got, receiver,
                   relay.group("sender") if relay else "", relay.group("text") if relay else "",
                   crash, at_join)
