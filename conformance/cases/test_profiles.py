"""The optional profiles (PROTOCOL.md section 8): private messages (``dm``) and history.

Each case belongs to a profile and runs only when the target claims it
(``chat-conformance --profile dm,history``); otherwise it is not collected, and the
report counts it under "not claimed".  A server that claims history has its
newcomers' replays set aside by the peers (:attr:`conformance.peer.Peer.replayed`),
so these cases read the replay from there and the live conversation as usual.
"""

from __future__ import annotations

from conformance.peer import SYNC_PREFIX, CaseFailure, Peer, Room, describe
from conformance.requirements import case
from reference.profiles import HISTORY_PREFIX, MAX_HISTORY_MESSAGES, MIN_HISTORY_MESSAGES, SERVER_NAME
from reference.protocol import Relay, encode_frame

#: Messages the history cases say before the newcomer comes: awkward bytes, relayed byte for byte.
BEFORE = ("said before newt came", "trailing spaces   ", "emoji 🎉 and é")


def _replay(peer: Peer) -> list[Relay]:
    """What ``peer`` was replayed, without the suite's own join messages."""
    return [r for r in peer.replayed if not r.text.startswith(SYNC_PREFIX)]


def _until(peer: Peer, wanted: Relay) -> list[Relay]:
    """Read ``peer`` up to ``wanted``; return the other relays it got first (bounded)."""
    others: list[Relay] = []
    while len(others) <= 2 * MAX_HISTORY_MESSAGES:
        got = peer.next_relay(describe(wanted))
        if got == wanted:
            return others
        others.append(got)
    raise CaseFailure(f"{peer.label} receives {describe(wanted)}",
                      f"{len(others)} other relays first, the last {describe(others[-1])}")


# -- dm ----------------------------------------------------------------------------------
@case("dm.delivered", "DM-1")
def test_dm_delivered(chat_room: Room) -> None:
    """DM-1: '/dm bea TEXT' from ana reaches bea as a relay from ana, byte for byte, prefix included."""
    ana, bea, _cy = chat_room.join_all("ana", "bea", "cy")
    text = "/dm bea see you at 5 🎉  "
    ana.send(text)
    bea.expect_relay("ana", text)


@case("dm.not-leaked", "DM-2")
def test_dm_not_leaked(chat_room: Room) -> None:
    """DM-2: a private message for bea reaches neither cy nor its sender, ana."""
    ana, bea, cy = chat_room.join_all("ana", "bea", "cy")
    ana.send("/dm bea only for bea")
    bea.expect_relay("ana", "/dm bea only for bea")
    ana.send("public, after the private one")
    # Per-sender order (RELAY-4): if the private one had gone to cy, it would come first.
    got = cy.next_relay('a relay from "ana": "public, after the private one"')
    if got != Relay("ana", "public, after the private one"):
        raise CaseFailure('cy receives only the public message: a relay from "ana": '
                          '"public, after the private one"', describe(got),
                          "the private message for bea was sent to cy too: a DM must reach "
                          "its recipient only (DM-2)")
    bea.expect_relay("ana", "public, after the private one")
    ana.expect_nothing("its own private message is not echoed (DM-2, RELAY-2)")


@case("dm.unknown-recipient", "DM-3")
def test_dm_unknown_recipient(chat_room: Room) -> None:
    """DM-3: a DM to a name nobody has gets the sender one notice from '*server*'; nobody else gets it."""
    ana, bea = chat_room.join_all("ana", "bea")
    ana.send("/dm zed are you there?")
    got = ana.next_relay(f'a notice from "{SERVER_NAME}" that names "zed"')
    if got.sender != SERVER_NAME or '"zed"' not in got.text:
        raise CaseFailure(f'ana receives a notice from "{SERVER_NAME}" that names "zed" in '
                          'double quotes', describe(got))
    ana.send("still here")
    got = bea.next_relay('a relay from "ana": "still here"')
    if got != Relay("ana", "still here"):
        raise CaseFailure('bea receives nothing of the undeliverable DM, then "still here"',
                          describe(got), "a DM nobody can receive is delivered to nobody (DM-3)")
    ana.expect_nothing("one notice per undeliverable DM")


@case("dm.public-lookalikes", "DM-4")
def test_dm_public_lookalikes(chat_room: Room) -> None:
    """DM-4: '/dmitri', ' /dm bea', '/DM bea' and '@bea hi' are public: everyone else gets them."""
    ana, bea, cy = chat_room.join_all("ana", "bea", "cy")
    texts = ["/dmitri is a name", " /dm bea (a space first)", "/DM bea capitals", "@bea hi"]
    for text in texts:
        ana.send(text)
    for peer in (bea, cy):
        peer.expect_relays([Relay("ana", t) for t in texts])


@case("dm.order", "DM-5")
def test_dm_order(chat_room: Room) -> None:
    """DM-5: a sender's public and private messages reach their recipient in the order sent."""
    ana, bea = chat_room.join_all("ana", "bea")
    texts = ["public 1", "/dm bea private 1", "public 2", "/dm bea private 2", "public 3"]
    for text in texts:
        ana.send(text)
    bea.expect_relays([Relay("ana", t) for t in texts])


@case("dm.reserved-name", "PROFILE-1", profile="dm")
def test_dm_reserved_name(chat_room: Room) -> None:
    """PROFILE-1: a client cannot register as '*server*', the sender of the server's notices."""
    ana, bea = chat_room.join_all("ana", "bea")
    fake = chat_room.connect("fake")
    fake.send_raw(encode_frame(SERVER_NAME.encode()), f'the username "{SERVER_NAME}"')
    fake.expect_closed(f'"{SERVER_NAME}" is reserved for the server\'s notices')
    ana.send("after the fake")
    bea.expect_relay("ana", "after the fake")


# -- history -----------------------------------------------------------------------------
def _said_before_newt(chat_room: Room, texts: tuple[str, ...] = BEFORE) -> tuple[Peer, Peer]:
    """ana and bea join, ana says ``texts``, bea reads them: history now.

    What bea gets before them (its own replay, were it unmarked) is not judged here:
    the newcomer's reads after this are.
    """
    ana, bea = chat_room.join_all("ana", "bea")
    for text in texts:
        ana.send(text)
    said = [Relay("ana", t) for t in texts]
    got = _until(bea, said[-1]) + [said[-1]]
    if got[-len(said):] != said:
        raise CaseFailure("bea receives what ana said, in order: " + "; ".join(map(describe, said[:3])),
                          "; ".join(map(describe, got[-len(said):][:3])))
    return ana, bea


@case("history.replayed", "HISTORY-1")
def test_history_replayed(chat_room: Room) -> None:
    """HISTORY-1: a newcomer first gets the messages said before it came, oldest first, each once."""
    ana, _bea = _said_before_newt(chat_room)
    newt = chat_room.join("newt")
    live = Relay("ana", "said after newt came")
    ana.send(live.text)
    before = [Relay("ana", t) for t in BEFORE]
    unmarked = _until(newt, live)  # unmarked replays are HISTORY-2's to judge
    replay = _replay(newt) + unmarked
    if replay[-len(before):] != before or any(replay.count(r) != 1 for r in before):
        raise CaseFailure("newt's replay ends with the 3 messages ana said before it joined, in "
                          "order, each once: " + "; ".join(describe(r) for r in before),
                          "; ".join(describe(r) for r in replay[-6:]) or "no replay at all")
    if newt.replayed_late:
        raise CaseFailure("the whole replay comes before the first live relay",
                          "a replayed message after a live one")


@case("history.marked", "HISTORY-2")
def test_history_marked(chat_room: Room) -> None:
    """HISTORY-2: replayed messages come from '*history* SENDER', never from the bare sender name."""
    ana, _bea = _said_before_newt(chat_room)
    newt = chat_room.join("newt")
    live = Relay("ana", "said after newt came")
    ana.send(live.text)
    unmarked = _until(newt, live)  # nobody spoke since newt joined: all of these are replays
    if unmarked:
        before = [Relay("ana", t) for t in BEFORE]
        raise CaseFailure(f"newt's first relay with a bare sender name is {describe(live)}",
                          f"{len(unmarked)} relays first, e.g. {describe(unmarked[-1])}",
                          f'messages from before newt joined were replayed without the '
                          f'"{HISTORY_PREFIX}" mark, as if just said: a client cannot tell them '
                          "from live messages (HISTORY-2)" if set(before) & set(unmarked) else "")
    marked = [r for r in _replay(newt) if r.text in BEFORE]
    if [r.text for r in marked][-3:] != list(BEFORE) or any(r.sender != "ana" for r in marked):
        raise CaseFailure(f'the replay holds the 3 messages from "{HISTORY_PREFIX}ana", byte for byte',
                          "; ".join(describe(r) for r in marked) or "no marked replay of them")


@case("history.bounded", "HISTORY-3")
def test_history_bounded(chat_room: Room) -> None:
    """HISTORY-3: after 110 messages a newcomer is replayed the last N of them, 10 <= N <= 100."""
    said = tuple(f"message {n} of 110" for n in range(110))
    ana, _bea = _said_before_newt(chat_room, said)
    newt = chat_room.join("newt")
    live = Relay("ana", "said after newt came")
    ana.send(live.text)
    before = [Relay("ana", t) for t in said]
    unmarked = _until(newt, live)
    replay = _replay(newt) + unmarked
    count = len(replay)
    if not MIN_HISTORY_MESSAGES <= count <= MAX_HISTORY_MESSAGES or replay != before[-count:]:
        raise CaseFailure(f"newt is replayed the last N of the 110 messages, oldest first, "
                          f"N from {MIN_HISTORY_MESSAGES} to {MAX_HISTORY_MESSAGES}",
                          f"{count} replayed" + (f", from {describe(replay[0])} to "
                                                 f"{describe(replay[-1])}" if replay else ""))
    chat_room.found(f"the server replayed the last {count} messages")


@case("history.no-private", "HISTORY-4", profile=("dm", "history"))
def test_history_no_private(chat_room: Room) -> None:
    """HISTORY-4: private messages and the server's notices are never replayed to a newcomer."""
    ana, bea = chat_room.join_all("ana", "bea")
    ana.send("/dm bea a secret for bea")
    bea.expect_relay("ana", "/dm bea a secret for bea")
    ana.send("/dm zed nobody here")
    notice = ana.next_relay(f'a notice from "{SERVER_NAME}"')
    ana.send("a public one")
    bea.expect_relay("ana", "a public one")
    newt = chat_room.join("newt")
    live = Relay("ana", "said after newt came")
    ana.send(live.text)
    unmarked = _until(newt, live)
    replay = _replay(newt) + unmarked
    leaked = [r for r in replay if r.text.startswith("/dm ") or r.text == notice.text]
    if leaked:
        raise CaseFailure("newt's replay holds no private message and no notice",
                          "; ".join(describe(r) for r in leaked))
    if Relay("ana", "a public one") not in replay:
        raise CaseFailure('newt\'s replay holds the public message "a public one"',
                          "; ".join(describe(r) for r in replay[-4:]) or "no replay at all")


@case("history.newcomer-only", "HISTORY-5")
def test_history_newcomer_only(chat_room: Room) -> None:
    """HISTORY-5: when newt joins, bea (already in the room) is not sent the history again."""
    ana, bea = _said_before_newt(chat_room)
    # bea has read relays since it joined, so its own replay as a newcomer is all in.
    own_replay = len(bea.replayed)
    chat_room.join("newt")
    ana.send("said after newt came")
    got = bea.next_relay('a relay from "ana": "said after newt came"')
    again = bea.replayed[own_replay:]
    if got != Relay("ana", "said after newt came") or again:
        raise CaseFailure('bea, in the room all along, receives only "said after newt came"',
                          describe(got) if got != Relay("ana", "said after newt came")
                          else f"{len(again)} replayed messages, e.g. {describe(again[0])}",
                          "the replay went to the members already in the room (HISTORY-5)")


@case("history.reserved-name", "PROFILE-1", profile="history")
def test_history_reserved_name(chat_room: Room) -> None:
    """PROFILE-1: a client cannot register as '*history* ana' and fake a replay."""
    ana, bea = chat_room.join_all("ana", "bea")
    fake = chat_room.connect("fake")
    fake.send_raw(encode_frame(f"{HISTORY_PREFIX}ana".encode()), f'the username "{HISTORY_PREFIX}ana"')
    fake.expect_closed("names starting with '*' are reserved for the server's replays")
    ana.send("after the fake")
    bea.expect_relay("ana", "after the fake")
