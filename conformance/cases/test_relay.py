"""Relaying (PROTOCOL.md section 3), with delivery granularity as an axis over the basic relay."""

from __future__ import annotations

import time

import pytest

from conformance.corpus import NAMES, PAYLOADS, MiB
from conformance.peer import CaseFailure, Peer, Room, describe, unreadable
from conformance.requirements import case, requirement
from conformance.scenarios import CUTS, expect_verbatim, probe_largest
from reference.client import ServerClosedError
from reference.protocol import Relay, RemoteProtocolError, encode_frame
from reference.sequence import RelayChecker, SequenceFailure
from reference.stamp import make_payload

SPLITTER = "zoé"
#: Three messages, each with a two-byte character, so a server that is right only for the
#: first message, or that counts characters instead of bytes, cannot pass.
MESSAGES = ["café au lait", "naïve second message", "über-third"]


def _cut_param(cut_id: str) -> object:
    marks: tuple[pytest.MarkDecorator, ...] = ()
    if cut_id == "whole-frames":
        marks = (requirement("RELAY-1"),)
    elif cut_id == "name-and-message-in-one-send":
        marks = (requirement("JOIN-1"),)
    return pytest.param(cut_id, id=cut_id, marks=marks)


@case("relay.basic", "ROBUST-1")
@pytest.mark.parametrize("cut", [_cut_param(c) for c in CUTS])
def test_basic_relay(chat_room: Room, cut: str) -> None:
    """ROBUST-1: a client's username and three messages, cut into sends this way, reach the others intact."""
    ana, bea = chat_room.join_all("ana", "bea")
    zoe = chat_room.connect(SPLITTER)
    frames = [encode_frame(SPLITTER.encode())] + [encode_frame(m.encode()) for m in MESSAGES]
    pieces = CUTS[cut](frames)
    # Pause between sends so each piece travels as its own segment; bytes sent in a
    # burst would be coalesced again by the kernel and hide a recv()-per-frame server.
    zoe.send_pieces(pieces, gap=0.003 if len(pieces) > 20 else 0.02)
    wanted = [Relay(SPLITTER, m) for m in MESSAGES]
    ana.expect_relays(wanted)
    bea.expect_relays(wanted)


@case("relay.no-echo", "RELAY-2")
def test_no_echo(chat_room: Room) -> None:
    """RELAY-2: the sender does not get its own message back; its next relay is the other client's."""
    ana, bea = chat_room.join_all("ana", "bea")
    # Taking turns makes an echo deterministic to catch, without waiting for silence:
    # the server writes an echo while handling the message, so before it handles the
    # reply that the other client sends only after receiving that message.
    ana.send("for bea only")
    bea.expect_relay("ana", "for bea only")
    bea.send("for ana only")
    ana.expect_relay("bea", "for ana only")
    ana.send("for bea again")
    bea.expect_relay("ana", "for bea again")


@case("relay.sender-label", "RELAY-3")
def test_sender_label(chat_room: Room) -> None:
    """RELAY-3: with four clients, every relay names the client that really sent it."""
    names = ["ana", "bea", "cy", "dov"]
    peers = chat_room.join_all(*names)
    for peer in peers:
        peer.send(f"this is {peer.name}")
    for peer in peers:
        got = [peer.next_relay(f"the messages of the {len(names) - 1} others")
               for _ in range(len(names) - 1)]
        wanted = sorted((Relay(n, f"this is {n}") for n in names if n != peer.name),
                        key=lambda r: r.sender)
        if sorted(got, key=lambda r: r.sender) != wanted:
            raise CaseFailure(f"{peer.label} receives, in any order: " + "; ".join(map(describe, wanted)),
                              "; ".join(map(describe, got)))


BURST = 200
#: The burst's senders are named c0, c1, ...: the sequence checker reads the sender's id from the name.
BURST_NAMES = r"c(\d+)"


@case("relay.burst-order", "RELAY-4")
def test_burst_order(chat_room: Room) -> None:
    """RELAY-4: three clients send 200 messages each; every recipient gets each sender's in order, once."""
    peers = chat_room.join_all("c0", "c1", "c2")
    for seq in range(BURST):
        for number, peer in enumerate(peers):
            peer.send_raw(encode_frame(make_payload(number, seq, 0).encode()), "messages")
    problems = []
    for number, peer in enumerate(peers):
        # The first reader waits out a quiet spell; by then the others' relays have all been sent.
        checker = _read_burst(peer, number, len(peers), peer.timeouts.arrive if number == 0
                              else peer.timeouts.silence)
        counts = sequence_counts(checker, [n for n in range(len(peers)) if n != number], BURST)
        if any(counts.values()):
            problems.append(f"{peer.label} got " + ", ".join(f"{v} {k}" for k, v in counts.items() if v))
    if problems:
        raise CaseFailure(f"each client receives the others' {BURST} messages each, in order, once, "
                          "under the right name", "; ".join(problems))


def _read_burst(peer: Peer, own: int, senders: int, quiet: float) -> RelayChecker:
    """Read relays until every other client's burst is in, or nothing comes for ``quiet`` s."""
    __tracebackhide__ = True
    checker = RelayChecker(BURST_NAMES, own=own)
    wanted = BURST * (senders - 1)
    while sum(t.unique for t in checker.sequence.tracks.values()) < wanted:
        try:
            relay = peer.receive(quiet)
        except TimeoutError:
            break
        except ServerClosedError:
            raise CaseFailure(f"{peer.label} receives the others' messages",
                              f"the server closed {peer.label}'s connection") from None
        except RemoteProtocolError as exc:
            raise CaseFailure(f"{peer.label} receives the others' messages", unreadable(exc)) from None
        checker.check(relay.sender, relay.text, time.monotonic_ns())
    try:  # a duplicate of the last message comes right after it
        while True:
            relay = peer.receive(peer.timeouts.silence)
            checker.check(relay.sender, relay.text, time.monotonic_ns())
    except (TimeoutError, ServerClosedError, RemoteProtocolError):
        pass
    return checker


def sequence_counts(checker: RelayChecker, senders: list[int], sent: int) -> dict[str, int]:
    """Lost, duplicated, reordered and mislabelled relays (then any other kind) counted exactly.

    Each of ``senders`` sent the numbers ``0 .. sent-1``: what never arrived is lost.
    """
    counts = {kind: n for kind, n in checker.summary().items() if kind != "lost"}
    lost = 0
    for sender in senders:
        track = checker.sequence.tracks.get(sender)
        lost += sent - (track.received_between(0, sent) if track is not None else 0)
    ordered = {"lost": lost}
    ordered.update({k: counts.pop(k, 0) for k in ("duplicated", "reordered", "mislabelled")})
    ordered.update(counts)
    return ordered


@case("relay.adjacent-frames", "RELAY-5")
def test_adjacent_frames(chat_room: Room) -> None:
    """RELAY-5: large messages from two senders at once reach a slow reader as unbroken pairs."""
    # A small receive window makes the server's writes to cy partial, which is when
    # a server that interleaves relays, or drops the unsent rest, shows it.
    cy = chat_room.join("cy", rcvbuf=4096)
    senders = chat_room.join_all("c0", "c1")
    size, count = 64 * 1024, 4
    for seq in range(count):
        for number, peer in enumerate(senders):
            frame = encode_frame(make_payload(number, seq, 0, size).encode())
            # Each in two sends 10 ms apart, as frame.large-message does: a server that reads
            # a payload with one recv() then always sees a part of it, not only when it is slow.
            peer.send_pieces([frame[:size // 2], frame[size // 2:]], gap=0.01)
    checker = RelayChecker(BURST_NAMES)
    for number in range(2 * count):
        relay = cy.next_relay(f"large relay {number + 1} of {2 * count}")
        stamp, failures = checker.check(relay.sender, relay.text, time.monotonic_ns())
        if stamp is None or len(relay.text) != size or set(failures) & _BROKEN_PAIR:
            raise CaseFailure(f"cy receives whole (username, {size}-byte message) pairs",
                              f"{describe(relay)} of {len(relay.text)} characters (relay {number + 1})")
    counts = sequence_counts(checker, [0, 1], count)
    if any(counts.values()):
        raise CaseFailure(f"cy receives each sender's {count} messages in order, once",
                          ", ".join(f"{v} {k}" for k, v in counts.items() if v))


_BROKEN_PAIR = {SequenceFailure.UNPAIRED, SequenceFailure.MISLABELLED, SequenceFailure.SEQUENCE_JUMP}


PAIR_ROUNDS, PAIR_SENDERS, PAIR_MESSAGES = 12, 3, 300


@case("relay.concurrent-pairs", "RELAY-5")
def test_concurrent_pairs(chat_room: Room) -> None:
    """RELAY-5: three clients talk at once, 12 rounds of 300 messages each; each relay is an unbroken pair."""
    # A server that writes the two frames of a relay with two unlocked sends (one thread per
    # client) breaks the pairs only when two threads race; the round is repeated so that the
    # race is run thousands of times, not once by luck.
    # Each talker sends a whole round in one go, so the threads relay at the same time for
    # tens of milliseconds (in chunks of 50 a thread often finished its chunk before the next
    # talker's arrived, and a loaded machine missed the interleave one run in five); rounds are
    # cheap, and a broken server is caught in the first one or two.  The reader speaks once a
    # round: it is a member that reads, not a silent one (relay.patient-reader's subject), so
    # a server that kicks quiet members cannot fail this case on a slow machine.
    reader = chat_room.join("reader")
    senders = chat_room.join_all(*[f"talker{n}" for n in range(PAIR_SENDERS)])
    for round_number in range(PAIR_ROUNDS):
        reader.send(f"reader#{round_number}")
        for peer in senders:
            peer.send_raw(b"".join(encode_frame(f"{peer.name}#{round_number}.{n}".encode())
                                   for n in range(PAIR_MESSAGES)), "messages")
        for peer in (reader, *senders):
            count = PAIR_MESSAGES * (PAIR_SENDERS - (peer is not reader)) + (peer is not reader)
            for number in range(count):
                relay = peer.next_relay(f"relay {number + 1} of {count} in round {round_number + 1}",
                                        timeout=peer.timeouts.arrive * 2)
                if relay.text.partition("#")[0] != relay.sender:
                    raise CaseFailure(f"{peer.label} receives each message right after the username "
                                      "frame of its own sender", f"{describe(relay)} (relay {number + 1} "
                                      f"of round {round_number + 1})",
                                      "a message frame came after another relay's username frame: "
                                      "the server interleaved two relays")

# -- untidy data: RELAY-1, byte for byte ----------------------------------------------------
@case("relay.corpus", "RELAY-1")
@pytest.mark.parametrize("payload", [pytest.param(t, id=n) for n, t in PAYLOADS.items()])
def test_corpus_message(chat_room: Room, payload: str) -> None:
    """RELAY-1: an untidy message (spaces, controls, emoji, look-alikes, 1 B, 1 MiB) arrives byte for byte."""
    ana, bea = chat_room.join_all("ana", "bea")
    ana.send_raw(encode_frame(payload.encode()), "the message")
    ana.send("tidy one after")  # the stream must still be in step after it
    expect_verbatim(bea, "ana", payload, timeout=bea.timeouts.arrive + len(payload) / MiB)
    bea.expect_relay("ana", "tidy one after")


@case("relay.corpus-name", "RELAY-1")
@pytest.mark.parametrize("name", [pytest.param(t, id=n) for n, t in NAMES.items()])
def test_corpus_name(chat_room: Room, name: str) -> None:
    """RELAY-1: an untidy username (spaces, emoji, right-to-left, digits) is relayed byte for byte."""
    bea = chat_room.join("bea")
    odd = chat_room.join(name)
    for text in ("first", "second"):
        odd.send(text)
        expect_verbatim(bea, name, text)


@case("relay.largest-accepted", "RELAY-1")
def test_largest_accepted(chat_room: Room) -> None:
    """RELAY-1: every message size the server accepts, up to the largest (tried: 16 MiB), arrives intact."""
    ana, bea = chat_room.join_all("ana", "bea")
    found = probe_largest(ana, bea)
    if found.altered:
        raise CaseFailure(f"bea receives ana's {found.stopped_at}-byte message intact, or the "
                          "server refuses it by closing ana's connection (FRAME-6)", found.why,
                          f"messages up to {found.accepted} bytes came through intact; a server "
                          "may refuse what is too large, never cut or change it")
    chat_room.found(f"intact up to {found.accepted // MiB} MiB"
                    + (f"; {found.stopped_at // MiB} MiB refused" if found.stopped_at else ""))
