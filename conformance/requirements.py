"""PROTOCOL.md's requirements, and the markers that tie each case to one of them.

Every conformance case is decorated with :func:`case`, which names its stable
case ID and the requirement it checks; the requirement's level (MUST, SHOULD,
MAY) decides how a broken case is judged.  A parametrised case may point one
parameter at another requirement with :func:`requirement`::

    @case("relay.basic", "ROBUST-1")
    @pytest.mark.parametrize("cut", [pytest.param(..., id="whole-frames",
                                                  marks=requirement("RELAY-1")), ...])

The one-line statements below are short paraphrases of PROTOCOL.md; a
self-test checks that the IDs and levels match the spec.

Requirements of an optional profile (PROTOCOL.md section 8: ``DM-*`` of ``dm``,
``HISTORY-*`` of ``history``) name it, and so do their cases: a case of a profile
runs only when the target claims it (``--profile dm,history``)::

    @case("dm.not-leaked", "DM-2")                      # profile "dm", from DM-2
    @case("history.reserved-name", "PROFILE-1", profile="history")
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import pytest

from reference.profiles import PROFILES

__all__ = ["REQUIREMENTS", "Level", "Marker", "Requirement", "case", "case_profiles", "requirement"]


class Level(enum.Enum):
    """RFC 2119 level of a requirement, and so of every case that checks it."""

    MUST = "MUST"
    SHOULD = "SHOULD"
    MAY = "MAY"


class Marker(enum.Enum):
    """The suite's pytest markers: one enum, registered under --strict-markers."""

    CASE = ("chat_case", "chat_case(case_id, requirement, level=None, profile=None): a "
                         "conformance case, the PROTOCOL.md requirement it checks, and the "
                         "optional profile(s) it belongs to")
    REQUIREMENT = ("chat_requirement", "chat_requirement(requirement, level=None): this "
                                       "parameter of a conformance case checks another requirement")

    def __init__(self, marker_name: str, help_text: str) -> None:
        self.marker_name = marker_name
        self.help_text = help_text


@dataclass(frozen=True)
class Requirement:
    id: str
    level: Level
    text: str
    #: The optional profile this requirement belongs to (None: the base protocol).
    profile: str | None = None
    #: A profile that replaces this base requirement when the target claims it.
    waived_by: str | None = None

    @property
    def group(self) -> str:
        return self.id.split("-", 1)[0]


def _table(*rows: tuple[str, Level, str]) -> dict[str, Requirement]:
    return {rid: Requirement(rid, level, text, profile=_PROFILE_OF.get(rid.split("-", 1)[0]),
                             waived_by=_WAIVED_BY.get(rid))
            for rid, level, text in rows}


#: The profile of each profile requirement group (PROFILE-1 belongs to any: its cases say which).
_PROFILE_OF = {"DM": "dm", "HISTORY": "history"}
#: Base requirements a claimed profile replaces: JOIN-5 (no history) under ``history``.
_WAIVED_BY = {"JOIN-5": "history"}


REQUIREMENTS: dict[str, Requirement] = _table(
    ("FRAME-1", Level.MUST, "A frame is a 10-byte decimal length header (in bytes) and a payload; "
                            "receivers reassemble frames from the byte stream."),
    ("FRAME-2", Level.MUST, "Headers are canonical: the length left-justified and space-padded "
                            "to 10 bytes; the server's relayed frames are canonical."),
    ("FRAME-3", Level.MUST, "A header that is not ASCII digits (after stripping spaces) is a "
                            "protocol error: that connection is closed, nothing of it relayed."),
    ("FRAME-4", Level.MUST, "Payloads are UTF-8; an invalid username or message closes that "
                            "connection and none of it is relayed."),
    ("FRAME-5", Level.MUST, "Payloads of up to 1 MiB are accepted and relayed intact."),
    ("FRAME-6", Level.MUST, "A declared length above the server's limit closes the connection "
                            "before the payload is buffered, and the server survives."),
    ("FRAME-7", Level.MAY, "Non-canonical headers of digits and spaces (right-justified, "
                           "zero-padded) may be accepted."),
    ("FRAME-8", Level.SHOULD, "A zero-length message is a valid frame and is relayed."),
    ("JOIN-1", Level.MUST, "The first frame is the username; username and first message may "
                           "come in one segment."),
    ("JOIN-2", Level.MUST, "An empty (or non-UTF-8) username is refused by closing the "
                           "connection; duplicate names are allowed."),
    ("JOIN-3", Level.MUST, "A connection that has not registered receives nothing, and nothing "
                           "is relayed from it."),
    ("JOIN-4", Level.SHOULD, "A connection that never sends its username hurts nobody and is "
                             "closed after a registration timeout."),
    ("JOIN-5", Level.MUST, "A client receives only messages read after it registered: no history "
                           "is replayed to a newcomer."),
    ("JOIN-6", Level.SHOULD, "Usernames have a length limit of at least 64 bytes; a longer one is "
                             "refused from its header alone."),
    ("RELAY-1", Level.MUST, "Each message is relayed to every other registered client as a "
                            "username frame and a message frame, byte for byte."),
    ("RELAY-2", Level.MUST, "A message is never sent back to its sender."),
    ("RELAY-3", Level.MUST, "The username frame names the actual sender, also with three or more "
                            "clients."),
    ("RELAY-4", Level.MUST, "Each sender's messages arrive in order, each exactly once, at every "
                            "recipient that keeps reading."),
    ("RELAY-5", Level.MUST, "A username frame and its message frame are adjacent."),
    ("RELAY-6", Level.MUST, "After a clean close or a reset the server stops sending to that "
                            "client, keeps relaying among the others and lets new clients join."),
    ("RELAY-7", Level.MUST, "A registered client that only reads stays in the room, however long "
                            "it is silent; only unregistered connections may time out."),
    ("RELAY-8", Level.MUST, "Every registered client gets every message, however many are in the "
                            "room and while others join and leave."),
    ("ROBUST-1", Level.MUST, "How the bytes are cut into segments does not change the result."),
    ("ROBUST-2", Level.MUST, "A half-sent frame or a connection without a username does not "
                             "delay the other clients."),
    ("ROBUST-3", Level.MUST, "A client that stops reading does not stall the room."),
    ("ROBUST-4", Level.SHOULD, "The backlog held for a client that does not read is bounded; "
                               "past the bound the client is disconnected."),
    ("ROBUST-5", Level.MUST, "A protocol error closes only the offending client; the server and "
                             "the others carry on."),
    ("ROBUST-6", Level.MUST, "The server survives a reset from any client at any moment and a "
                             "burst of hundreds of connections."),
    ("ROBUST-7", Level.MUST, "The server keeps running and accepting connections whatever its "
                             "clients do; it never exits or stops accepting on its own."),
    ("ROBUST-8", Level.SHOULD, "A reader who keeps reading is never disconnected for a backlog; "
                               "the client whose traffic fills the queue is."),
    ("LIMIT-1", Level.MUST, "Beyond its capacity the server refuses new connections by closing "
                            "them and keeps serving the clients it has."),
    ("LIMIT-2", Level.SHOULD, "The server logs each refusal and each dropped client with the "
                              "reason."),
    ("LIMIT-3", Level.SHOULD, "Server memory is bounded by what clients send and by a "
                              "server-wide budget; closed connections are freed at once."),
    ("ADDR-1", Level.SHOULD, "Without configuration the server listens on 127.0.0.1:1234."),
    # Section 8: the optional profiles, judged only when claimed (--profile).
    ("PROFILE-1", Level.MUST, "A server claiming a profile refuses usernames starting with '*', "
                              "the names of its own notices and replays."),
    ("DM-1", Level.MUST, "'/dm NAME TEXT' goes to every other client named NAME, relayed byte for "
                         "byte with the sender's name."),
    ("DM-2", Level.MUST, "A private message reaches nobody but its recipients: not the others, "
                         "not the sender, not history."),
    ("DM-3", Level.MUST, "For an unknown or empty NAME the sender gets one notice from '*server*' "
                         "naming it; nobody else gets anything and the server survives."),
    ("DM-4", Level.MUST, "Any other payload, even one that looks like a command ('/dmitri', "
                         "'@bea hi'), is public."),
    ("DM-5", Level.MUST, "A sender's private and public messages keep their order at a recipient."),
    ("HISTORY-1", Level.MUST, "A newcomer is first sent the recent public messages from before it "
                              "registered, oldest first, each once, before any live relay."),
    ("HISTORY-2", Level.MUST, "A replayed message comes from '*history* SENDER' with the payload byte "
                              "for byte; never with the bare sender name."),
    ("HISTORY-3", Level.MUST, "The replay is the last N messages, N from 10 to 100."),
    ("HISTORY-4", Level.MUST, "Private messages and the server's notices are never replayed."),
    ("HISTORY-5", Level.MUST, "Only the newcomer gets the replay; members already in the room do "
                              "not get it again."),
)


def case(case_id: str, requirement_id: str, level: Level | None = None, *,
         profile: str | tuple[str, ...] | None = None) -> pytest.MarkDecorator:
    """Mark a test function as the conformance case ``case_id`` checking ``requirement_id``.

    ``level`` defaults to the requirement's own; informational cases pass
    ``Level.MAY`` when they report a fact that a stricter rule leaves open.
    ``profile`` (default: the requirement's) is the optional profile the case
    belongs to, or a tuple of profiles that must all be claimed for it to run.
    """
    if requirement_id not in REQUIREMENTS:
        raise ValueError(f"unknown requirement {requirement_id!r}")
    profiles = case_profiles(REQUIREMENTS[requirement_id], profile)
    if requirement_id == "PROFILE-1" and not profiles:
        raise ValueError(f"{case_id}: a PROFILE-1 case must name its profile")
    mark: pytest.MarkDecorator = getattr(pytest.mark, Marker.CASE.marker_name)
    return mark(case_id, requirement_id, level, profile=profiles)


def case_profiles(requirement: Requirement, profile: str | tuple[str, ...] | None) -> tuple[str, ...]:
    """The profiles a case needs claimed: ``profile`` as given, else its requirement's."""
    named = (profile,) if isinstance(profile, str) else tuple(profile or ())
    if not named and requirement.profile:
        named = (requirement.profile,)
    unknown = [p for p in named if p not in PROFILES]
    if unknown:
        raise ValueError(f"unknown profile {unknown[0]!r}")
    return named


def requirement(requirement_id: str, level: Level | None = None) -> pytest.MarkDecorator:
    """Point one parameter of a case at another requirement (for ``pytest.param(marks=...)``)."""
    if requirement_id not in REQUIREMENTS:
        raise ValueError(f"unknown requirement {requirement_id!r}")
    mark: pytest.MarkDecorator = getattr(pytest.mark, Marker.REQUIREMENT.marker_name)
    return mark(requirement_id, level)
