"""The cases' view of a server: recorded clients in a room, and failures that explain themselves.

A :class:`Room` opens :class:`Peer` connections (ChatClients on a recording
socket, see :mod:`conformance.wire`) to the target and closes them all after
the case.  Registration has no acknowledgement in this protocol, so
:meth:`Room.join` synchronises instead of sleeping: the newcomer sends one
numbered sync message and a confirmed member waits for its relay, which
proves the newcomer is registered (a server reads a connection's frames in
order).  The first two members confirm each other with the newcomer's message,
or, if the server read it before the first member's username, one the other
way (:meth:`Room.pair`).  A fixed number of messages per join, never a retry, so a
case sends the same traffic every run.  A newcomer that must stay silent (``silent=True``) is confirmed
the other way: a member sends sync messages until one reaches it.  Sync
messages start with :data:`SYNC_PREFIX`; peers skip them when they read.

When the target claims the ``history`` profile, a newcomer is first sent replayed
messages marked ``*history* SENDER`` (HISTORY-2): a peer sets those aside in
:attr:`Peer.replayed` as it reads, so every case sees the live conversation it
expects, and the history cases judge the replay from there.

Every wait is bounded by :class:`Timeouts`.  When the server misbehaves, the
``expect_*`` helpers raise :class:`CaseFailure`, which says what was expected
and what came instead; the plugin adds the wire transcript.
"""

from __future__ import annotations

import collections
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from conformance.wire import RecordingSocket, Wire, printable
from reference.barrier import DOUBLING, AnnounceBarrier, JoinBarrier, Observation, PairBarrier, Sentinels
from reference.client import ChatClient, ServerClosedError
from reference.profiles import unmark_history
from reference.protocol import Relay, RemoteProtocolError, encode_frame

__all__ = ["SYNC_PREFIX", "CaseFailure", "Peer", "Room", "Timeouts", "describe", "unreadable"]

SYNC_PREFIX = "~sync:"
#: How long the first pair waits for the newcomer's sync before the other member sends one.
PAIR_WAIT = 1.0
#: The largest relay a peer decodes: above any size the suite sends (16 MiB), so a server
#: that accepts big messages is judged on what it relays, not on the client's own limit.
PEER_MAX_PAYLOAD = 32 * 1024 * 1024


@dataclass(frozen=True)
class Timeouts:
    """How long the suite waits; short, so a hanging server still finishes quickly."""

    arrive: float = 2.5     # for a relay that should come
    silence: float = 0.3    # to conclude that nothing more comes, once the room is in step
    close: float = 3.0      # for the server to close a connection it should close
    join: float = 3.0       # for the sync that proves a newcomer is registered
    connect: float = 3.0


class CaseFailure(AssertionError):
    """The server broke the case's requirement: what was expected, and what came."""

    def __init__(self, expected: str, got: str, hint: str = "") -> None:
        self.expected = expected
        self.got = got
        self.hint = hint
        super().__init__(self.detail)

    @property
    def detail(self) -> str:
        text = f"expected: {self.expected}\n     got: {self.got}"
        return text + (f"\n    note: {self.hint}" if self.hint else "")


def describe(relay: Relay | None) -> str:
    """A relay in a student's words."""
    if relay is None:
        return "nothing"
    return f'a relay from "{printable(relay.sender.encode(), 40)}": "{printable(relay.text.encode(), 60)}"'


def unreadable(exc: RemoteProtocolError) -> str:
    """What a client could not read, in true words: a broken frame, or a whole frame that is not UTF-8."""
    if exc.requirement == "FRAME-4":
        return f"a well-framed relay whose {exc.reason}"
    return f"bytes that are not valid frames: {exc.reason}"


def _closed_words(exc: ServerClosedError, peer: Peer) -> str:
    how = "reset" if "reset" in str(exc) else "closed"
    return f"the server {how} {peer.label}'s connection"


class Peer(ChatClient):
    """One recorded client connection; its reads skip the room's sync messages."""

    def __init__(self, sock: RecordingSocket, label: str, timeouts: Timeouts, *,
                 history: bool = False) -> None:
        super().__init__(sock, timeout=timeouts.arrive,  # type: ignore[arg-type]
                         max_payload=PEER_MAX_PAYLOAD)
        #: The target claims the history profile: marked replays are set aside, not returned.
        self.history = history
        #: The marked replays received, as (original sender, text), in order of arrival.
        self.replayed: list[Relay] = []
        #: Whether a marked replay came after a live relay (HISTORY-1: the replay comes first).
        self.replayed_late = False
        self._live_seen = False
        self.label = label
        self.timeouts = timeouts
        self.wire = sock.wire
        self.pending: collections.deque[Relay] = collections.deque()
        #: Whether the server has certainly registered this peer (a relay to or from it came).
        self.confirmed = False

    @property
    def received(self) -> bytes:
        """Every byte this peer received (only for peers opened with ``keep_received``)."""
        raw = self.sock.received  # type: ignore[attr-defined]
        if raw is None:
            raise ValueError(f"{self.label} was not opened with keep_received=True")
        return bytes(raw)

    # -- reading -----------------------------------------------------------
    def receive_live(self, timeout: float | None = None) -> Relay:
        """The next relay that is not a marked replay (those go to :attr:`replayed`)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            relay = ChatClient.receive(self, max(0.0, deadline - time.monotonic()))
            sender = unmark_history(relay.sender) if self.history else None
            if sender is None:
                self._live_seen = True
                return relay
            self.replayed.append(Relay(sender, relay.text))
            self.replayed_late = self.replayed_late or self._live_seen

    def receive(self, timeout: float | None = None) -> Relay:
        if self.pending:
            return self.pending.popleft()
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            relay = self.receive_live(max(0.0, deadline - time.monotonic()))
            if not relay.text.startswith(SYNC_PREFIX):
                return relay

    def next_relay(self, waiting_for: str, timeout: float | None = None) -> Relay:
        """The next relay; a CaseFailure naming ``waiting_for`` when none comes."""
        __tracebackhide__ = True
        wait = self.timeouts.arrive if timeout is None else timeout
        try:
            return self.receive(wait)
        except TimeoutError:
            raise CaseFailure(f"{self.label} receives {waiting_for}",
                              f"nothing within {wait:.1f} s") from None
        except ServerClosedError as exc:
            raise CaseFailure(f"{self.label} receives {waiting_for}", _closed_words(exc, self)) from None
        except RemoteProtocolError as exc:
            raise CaseFailure(f"{self.label} receives {waiting_for}",
                              unreadable(exc)) from None

    def expect_relay(self, sender: str, text: str, timeout: float | None = None) -> None:
        """The next relay must be exactly (sender, text)."""
        __tracebackhide__ = True
        wanted = Relay(sender, text)
        got = self.next_relay(describe(wanted), timeout)
        if got != wanted:
            raise CaseFailure(f"{self.label} receives {describe(wanted)}", describe(got))

    def expect_relays(self, wanted: Sequence[Relay], timeout: float | None = None) -> None:
        """Exactly these relays, in this order, within ``timeout`` in total."""
        __tracebackhide__ = True
        deadline = time.monotonic() + (self.timeouts.arrive if timeout is None else timeout)
        for number, relay in enumerate(wanted, 1):
            left = max(0.05, deadline - time.monotonic())
            got = self.next_relay(f"relay {number} of {len(wanted)}: {describe(relay)}", left)
            if got != relay:
                raise CaseFailure(f"{self.label}'s relay {number} of {len(wanted)} is "
                                  f"{describe(relay)}", describe(got))

    def expect_nothing(self, why: str, duration: float | None = None) -> None:
        """No relay may come within ``duration`` (a close of the connection is fine)."""
        __tracebackhide__ = True
        wait = self.timeouts.silence if duration is None else duration
        try:
            got = self.receive(wait)
        except (TimeoutError, ServerClosedError):
            return
        except RemoteProtocolError as exc:
            raise CaseFailure(f"{self.label} receives nothing ({why})",
                              unreadable(exc)) from None
        raise CaseFailure(f"{self.label} receives nothing ({why})", describe(got))

    def expect_closed(self, why: str, timeout: float | None = None) -> None:
        """The server must close this connection (EOF or reset) and relay nothing first."""
        __tracebackhide__ = True
        wait = self.timeouts.close if timeout is None else timeout
        deadline = time.monotonic() + wait
        self.pending.clear()
        while True:
            try:
                got = self.receive(max(0.0, deadline - time.monotonic()))
            except ServerClosedError:
                return
            except TimeoutError:
                raise CaseFailure(f"the server closes {self.label}'s connection ({why})",
                                  f"the connection still open after {wait:.1f} s") from None
            except RemoteProtocolError as exc:
                raise CaseFailure(f"the server closes {self.label}'s connection ({why})",
                                  unreadable(exc)) from None
            raise CaseFailure(f"the server closes {self.label}'s connection ({why})",
                              f"{describe(got)} instead")

    def drain(self, quiet: float, limit: int) -> tuple[int, str]:
        """Read and discard raw bytes; return how many, and why it stopped.

        Stops when the server closes (``"closed"``) or resets (``"reset"``) the
        connection, when nothing comes for ``quiet`` s (``"quiet"``), or after
        ``limit`` bytes (``"limit"``).  Reads past the recorder: this can be tens of MiB.
        """
        raw: socket.socket = self.sock._sock  # type: ignore[attr-defined]
        raw.settimeout(quiet)
        total, ending = 0, "limit"
        while total < limit:
            try:
                data = raw.recv(256 * 1024)
            except TimeoutError:
                ending = "quiet"
                break
            except ConnectionResetError:
                ending = "reset"
                break
            if not data:
                ending = "closed"
                break
            total += len(data)
        self.wire.note(self.label, f"read {total} bytes without decoding them; then: {ending}")
        return total, ending

    # -- writing -----------------------------------------------------------
    def send_pieces(self, pieces: Iterable[bytes], gap: float) -> None:
        """Send each piece in its own send(), pausing ``gap`` s so each is its own segment."""
        __tracebackhide__ = True
        for piece in pieces:
            self.send_raw(piece, "the next piece")
            time.sleep(gap)

    def send_raw(self, data: bytes, what: str = "its data") -> None:
        """Send bytes as they are; 'the server stopped reading' becomes a CaseFailure."""
        __tracebackhide__ = True
        try:
            super().send_raw(data)
        except TimeoutError:
            raise CaseFailure(f"the server reads {what} from {self.label}",
                              f"the send blocked for {self.timeout:g} s: the server stopped "
                              f"reading {self.label}'s connection") from None
        except OSError as exc:
            raise CaseFailure(f"the server reads {what} from {self.label}",
                              f"the send failed: {exc.strerror or exc}") from None

    def close(self) -> None:
        if not self.closed:
            self.wire.note(self.label, "client closed the connection (FIN)")
        super().close()

    def abort(self) -> None:
        if not self.closed:
            self.wire.note(self.label, "client reset the connection (RST)")
        super().abort()


class Room:
    """The connections of one case; all closed when the case ends."""

    def __init__(self, address: tuple[str, int], wire: Wire, timeouts: Timeouts, *,
                 history: bool = False) -> None:
        self.address = address
        #: The target claims the history profile (see :class:`Peer`).
        self.history = history
        self.wire = wire
        self.timeouts = timeouts
        self.peers: list[Peer] = []
        #: What an informational case found, in plain words (the record's detail).
        self.findings: list[str] = []
        #: One numbering for every join's sync messages, so a late one is never mistaken.
        self._sentinels = Sentinels(SYNC_PREFIX, first=1)

    def found(self, text: str) -> None:
        """Record a fact for the report (informational cases)."""
        self.findings.append(text)

    def connect(self, label: str, *, keep_received: bool = False,
                rcvbuf: int | None = None) -> Peer:
        """A new, unregistered connection."""
        __tracebackhide__ = True
        sock = socket.socket(socket.AF_INET6 if ":" in self.address[0] else socket.AF_INET)
        if rcvbuf is not None:
            # Set before connect() so the window stays small: a non-reader then fills up fast.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(self.timeouts.connect)
        try:
            sock.connect(self.address)
        except OSError as exc:
            sock.close()
            self.wire.note(label, f"connect failed: {exc.strerror or exc}")
            raise CaseFailure(f"{label} connects to {self.address[0]}:{self.address[1]}",
                              f"connect failed: {exc.strerror or exc}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.wire.note(label, "connected")
        peer = Peer(RecordingSocket(sock, self.wire, label, keep_received), label, self.timeouts,
                    history=self.history)
        self.peers.append(peer)
        return peer

    @property
    def members(self) -> list[Peer]:
        """Open peers that have registered."""
        return [p for p in self.peers if p.name is not None and not p.closed]

    def join(self, name: str, *, keep_received: bool = False, rcvbuf: int | None = None,
             silent: bool = False) -> Peer:
        """Connect, register as ``name``, and wait until that registration is confirmed.

        ``silent``: the newcomer sends nothing after its username (a member confirms it instead).
        """
        __tracebackhide__ = True
        helpers = self.members
        peer = self.connect(name, keep_received=keep_received, rcvbuf=rcvbuf)
        peer.register(name)
        confirmed = [p for p in helpers if p.confirmed]
        if helpers and silent:
            self.sync(helpers[0], peer)
        elif confirmed:
            self.announce(peer, confirmed[0], [p for p in helpers if p is not confirmed[0]])
        elif helpers:
            self.pair(helpers[0], peer)
        if helpers:
            peer.confirmed = helpers[0].confirmed = True
        return peer

    def join_all(self, *names: str) -> list[Peer]:
        return [self.join(name) for name in names]

    def announce(self, newcomer: Peer, helper: Peer, others: Sequence[Peer] = ()) -> None:
        """``newcomer`` sends one sync message; wait until ``helper`` and ``others`` have its relay.

        Waiting for every member, not just one, means no relay of the join is still being
        written when the case goes on, so a server that can interleave two relays (one
        thread per client) meets the case's own traffic alone, the same way every run.
        A member whose connection the server has closed is left out (the case judges that).
        """
        __tracebackhide__ = True
        barrier = AnnounceBarrier(self._sentinels.next(), (helper, *others), sentinels=self._sentinels)
        token = barrier.text
        newcomer.send_raw(encode_frame(token.encode()), "its first message")
        for member in (helper, *others):
            expected = (f'{newcomer.label} gets registered: its first message "{token}" reaches '
                        f"{member.label}")
            try:
                arrived = self._await(member, barrier.observe, self.timeouts.join, expected)
            except CaseFailure:
                if member is helper:
                    raise
                barrier.drop(member)
                continue  # closed by the server before this join: not in the room any more
            if not arrived:
                raise CaseFailure(expected, f"nothing within {self.timeouts.join:g} s",
                                  "registration has no acknowledgement, so the suite confirms it "
                                  "by relaying a message from the newcomer to every member")

    def pair(self, first: Peer, newcomer: Peer) -> None:
        """Confirm the first two members: the newcomer's sync S reaches ``first``, or else T does.

        ``first`` sent its username before the newcomer connected, so a server reads it
        before the newcomer's S in practice, and S alone confirms both: one message, the
        same traffic every run.  Only when S has not come after PAIR_WAIT does ``first``
        send T (see :class:`reference.barrier.PairBarrier` for why one of them arrives).
        """
        __tracebackhide__ = True
        expected = f"{newcomer.label} and {first.label} get registered"
        barrier = PairBarrier(first, newcomer, self._sentinels, min(PAIR_WAIT, self.timeouts.join))
        _, first_token = barrier.next_sentinel()
        newcomer.send_raw(encode_frame(first_token.encode()), "its first message")
        if self._await(first, barrier.observe, barrier.next_wait(), expected):
            return
        _, second_token = barrier.next_sentinel()
        first.send_raw(encode_frame(second_token.encode()), "a message")
        deadline = time.monotonic() + self.timeouts.join
        while time.monotonic() < deadline:
            if (self._await(newcomer, barrier.observe, 0.02, expected)
                    or self._await(first, barrier.observe, 0.02, expected)):
                return
        raise CaseFailure(f'{expected}: "{first_token}" from {newcomer.label} reaches {first.label}, '
                          f'or "{second_token}" the other way', "neither arrived",
                          "registration has no acknowledgement, so the suite confirms it by "
                          "relaying a message between the two")

    def _await(self, reader: Peer, observe: Callable[[Relay, Peer], Observation], wait: float,
               expected: str) -> bool:
        """Read ``reader``'s relays for up to ``wait`` s; True once the barrier confirms it.

        The case's own relays are kept for the case to read later; sync messages are skipped.
        """
        __tracebackhide__ = True
        deadline = time.monotonic() + wait
        while True:
            try:
                got = reader.receive_live(max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                return False
            except ServerClosedError as exc:
                raise CaseFailure(expected, _closed_words(exc, reader)) from None
            except RemoteProtocolError as exc:
                raise CaseFailure(expected, unreadable(exc)) from None
            seen = observe(got, reader)
            if seen is Observation.CONFIRMS:
                return True
            if seen is Observation.FOREIGN:
                reader.pending.append(got)  # the case's own relay: the case reads it later

    def sync(self, sender: Peer, newcomer: Peer) -> None:
        """``sender`` sends sync messages until ``newcomer`` receives one of them.

        Any of the sender's sync messages proves it: also one that an earlier join left in
        flight (the sender sent it before that join was confirmed, the server read it after
        this newcomer registered), which on a loaded machine is normal.
        """
        __tracebackhide__ = True
        deadline = time.monotonic() + self.timeouts.join
        barrier = JoinBarrier(str(sender.name), self._sentinels, backoff=DOUBLING)
        while time.monotonic() < deadline:
            sender.send_raw(encode_frame(barrier.next_sentinel().encode()), "a message")
            try:
                got = newcomer.receive_live(min(barrier.next_wait(),
                                                max(0.0, deadline - time.monotonic())))
            except TimeoutError:
                continue
            except ServerClosedError as exc:
                raise CaseFailure(f"{newcomer.label} gets registered (a message from "
                                  f"{sender.label} reaches it)", _closed_words(exc, newcomer)) from None
            except RemoteProtocolError as exc:
                raise CaseFailure(f"{newcomer.label} gets registered (a message from "
                                  f"{sender.label} reaches it)",
                                  unreadable(exc)) from None
            if barrier.observe(got) is Observation.CONFIRMS:
                return
            # Nobody else speaks while a case joins, so anything else is the server's doing.
            raise CaseFailure(f'{newcomer.label} gets registered: it receives a relay from '
                              f'"{sender.name}": "{barrier.last_sentinel}" (or an earlier '
                              f'{SYNC_PREFIX} message)',
                              describe(got),
                              "nothing else was said since it joined: a message from before it "
                              "joined would be history, which the server must not replay (JOIN-5)")
        raise CaseFailure(f"{newcomer.label} gets registered: one of {len(barrier.sent)} messages "
                          f"that {sender.label} sent over {self.timeouts.join:g} s reaches it",
                          "none of them arrived",
                          "registration has no acknowledgement, so the suite confirms it by "
                          "relaying a message to the newcomer")

    def close(self) -> None:
        for peer in self.peers:
            peer.close()
