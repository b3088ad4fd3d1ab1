"""Sans-I/O codec for the 10-byte-header chat protocol (see PROTOCOL.md).

This module knows bytes and events and nothing else: no sockets, clocks,
threads or logging.  It is shaped like h11's ``Connection``::

    conn = Connection(Role.SERVER)
    conn.receive_data(chunk)          # b"" means the peer closed
    while (event := conn.next_event()) is not NEED_DATA:
        ...                           # Register / Message / Relay / ConnectionClosed
    wire = conn.send(Relay("ana", "hi"))

Every driver in chat-harness -- the reference server, the headless and Tk
clients, the conformance suite, the load generators and the benchmarks --
is a wrapper around these few functions and classes.

Wire format (FRAME-1..FRAME-6): a 10-byte header holding the payload length in
bytes as ASCII decimal, left-justified and space-padded (``f"{n:<10}"``),
followed by that many bytes of UTF-8 payload.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_MAX_PAYLOAD",
    "DEFAULT_MAX_USERNAME",
    "DEFAULT_PORT",
    "HEADER_LENGTH",
    "MIN_MAX_PAYLOAD",
    "MIN_MAX_USERNAME",
    "NEED_DATA",
    "Connection",
    "ConnectionClosed",
    "Event",
    "FrameDecoder",
    "LocalProtocolError",
    "Message",
    "NeedData",
    "ProtocolError",
    "Register",
    "Relay",
    "RemoteProtocolError",
    "Role",
    "encode_frame",
    "encode_header",
    "parse_header",
]

HEADER_LENGTH: Final = 10
DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 1234
#: Every server must accept payloads of at least this many bytes (FRAME-5).
MIN_MAX_PAYLOAD: Final = 1024 * 1024
#: The reference implementation's default limit: comfortably above the minimum.
DEFAULT_MAX_PAYLOAD: Final = 4 * 1024 * 1024
#: Every server must accept usernames of at least this many bytes (JOIN-6).
MIN_MAX_USERNAME: Final = 64
#: The reference's username limit (JOIN-6): a username is relayed with every
#: message, so its length multiplies what a sender makes the server owe each
#: reader; 256 bytes bounds that to 27 times a zero-length message's 10 bytes.
DEFAULT_MAX_USERNAME: Final = 256
#: The largest length a 10-digit header can express.
_MAX_HEADER_VALUE: Final = 10**HEADER_LENGTH - 1

_HEADER_BYTES: Final = frozenset(b"0123456789 ")
#: A payload with at least this many bytes still missing is collected in pieces (FrameDecoder).
_JOIN_AT: Final = 64 * 1024


# --------------------------------------------------------------------------
# Errors: one hierarchy, two sides (as in h11).
# --------------------------------------------------------------------------
class ProtocolError(Exception):
    """Base class of every error this codec raises."""


class LocalProtocolError(ProtocolError):
    """Our caller misused the API (for example sent a Message before Register)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that break PROTOCOL.md; ``requirement`` names the rule."""

    def __init__(self, message: str, requirement: str) -> None:
        super().__init__(f"{message} [{requirement}]")
        self.reason = message
        self.requirement = requirement


# --------------------------------------------------------------------------
# Events: small frozen dataclasses; "need more data" is a sentinel.
# --------------------------------------------------------------------------
class NeedData(enum.Enum):
    """Sentinel type: no complete event is buffered yet."""

    NEED_DATA = "NEED_DATA"

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData.NEED_DATA


@dataclass(frozen=True, slots=True)
class Register:
    """Client -> server: the first frame of a connection, the username."""

    name: str


@dataclass(frozen=True, slots=True)
class Message:
    """Client -> server: any later frame, a chat line.

    On receipt ``payload`` also holds the validated UTF-8 bytes as they came,
    so a server can relay them without encoding the text again.
    """

    text: str
    payload: bytes = field(default=b"", compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Relay:
    """Server -> client: a username frame followed by a message frame."""

    sender: str
    text: str


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed its side cleanly, on a frame boundary."""


Event = Register | Message | Relay | ConnectionClosed
#: A Relay built field by field through its slots (next_relays: one per delivery in a load test);
#: a frozen dataclass's __init__ sets each field with a Python-level object.__setattr__ call.
_new = object.__new__
_set_sender = Relay.__dict__["sender"].__set__
_set_text = Relay.__dict__["text"].__set__


# --------------------------------------------------------------------------
# Frame level: bytes <-> payloads.
# --------------------------------------------------------------------------
def encode_header(length: int) -> bytes:
    """The canonical 10-byte header for a payload of ``length`` bytes.

    Returns:
        ``length`` in ASCII decimal, left-justified and space-padded to 10
        bytes: ``encode_header(5) == b"5         "``, ``encode_header(0) ==
        b"0         "``.

    Raises:
        LocalProtocolError: if ``length`` is negative or above 9,999,999,999
            (it does not fit 10 digits).  The receiver's limit (FRAME-6) is not
            checked here: a header for more than a server accepts is encoded.
    """
    if not 0 <= length <= _MAX_HEADER_VALUE:
        raise LocalProtocolError(f"payload length {length} does not fit a 10-digit header")
    return b"%-10d" % length


def encode_frame(payload: bytes) -> bytes:
    """Header plus payload: one complete frame.

    Returns:
        ``encode_header(len(payload)) + payload``; an empty payload gives the
        10-byte frame ``b"0         "`` (FRAME-5 allows it).

    Raises:
        LocalProtocolError: if the payload is too long for a 10-digit header.
            ``payload`` is sent as given: it is not checked to be UTF-8
            (:meth:`Connection.send` encodes text, and so guarantees FRAME-4).
    """
    return encode_header(len(payload)) + payload


def parse_header(header: bytes | bytearray) -> int:
    """Decode a complete 10-byte header.

    Accepted (FRAME-2, FRAME-3): ASCII digits with optional spaces on either
    side, so the canonical ``b"5         "`` and the lenient right-justified
    ``b"         5"`` or zero-padded ``b"0000000005"`` all mean 5.

    Returns:
        The payload length the header declares, 0 to 9,999,999,999.  The
        caller compares it with its own limit (``FrameDecoder`` does, FRAME-6).

    Raises:
        RemoteProtocolError: (FRAME-3) for signs, spaces between digits, other
            whitespace (tabs, newlines), underscores, non-ASCII digits and an
            all-space header.

    Edge cases: the header's length is not checked (callers slice exactly
    10 bytes); a ``bytearray`` is read without being copied.
    """
    stripped = header.strip(b" ")
    if not stripped.isdigit():  # bytes.isdigit: ASCII digits only, False when empty
        raise RemoteProtocolError(f"header {bytes(header)!r} is not a decimal length", "FRAME-3")
    return int(stripped)


class FrameDecoder:
    """Incremental frame parser: feed bytes, take out whole payloads.

    A frame is yielded whole or not at all.  The declared length is checked
    against ``max_payload`` as soon as the header is complete, *before* any of
    the payload is buffered (FRAME-6), and a header is rejected as soon as it
    holds a byte that can never be part of a valid header.

    Bytes wait in one bytearray, except the payload of a large frame
    (``_JOIN_AT`` or more still missing once its header is read): its pieces
    are kept as fed and joined once at the end.  Growing a bytearray to 1 MiB
    copies it at every reallocation and copying the payload out is one more
    pass; the join is the only copy (and a frame that arrived in one piece is
    not copied at all).
    """

    __slots__ = ("_buf", "_chunks", "_have", "_need", "limit_rule", "limit_what", "max_payload")

    def __init__(self, max_payload: int = DEFAULT_MAX_PAYLOAD) -> None:
        self._buf = bytearray()
        self._need = -1  # payload length of the frame being read, -1 = in header
        self._chunks: list[bytes] | None = None  # a large payload's pieces, in order
        self._have = 0   # bytes in ``_chunks``
        self.max_payload = max_payload
        #: The rule (and the word for the frame) an over-limit length breaks:
        #: FRAME-6 for payloads, JOIN-6 while a server awaits the username.
        self.limit_rule = "FRAME-6"
        self.limit_what = "declared length"

    def feed(self, data: bytes) -> None:
        """Append bytes received from the peer.

        Never raises and never parses: the checks happen in :meth:`next_frame`.
        ``b""`` is a no-op here (the end of the stream is the Connection's
        business: :meth:`Connection.receive_data`).  ``bytearray`` and
        ``memoryview`` work too; a large payload's piece is copied once if so.
        """
        if self._chunks is None:
            self._buf += data
        else:
            self._chunks.append(data if type(data) is bytes else bytes(data))
            self._have += len(data)

    @property
    def buffered(self) -> int:
        """How many received bytes are not yet part of a yielded frame."""
        return len(self._buf) + self._have

    @property
    def trailing_data(self) -> bytes:
        """The unconsumed bytes (for tests and for diagnosing a peer)."""
        return bytes(self._buf) if self._chunks is None else b"".join(self._chunks)

    @property
    def mid_frame(self) -> bool:
        """True when part of a frame is buffered."""
        return bool(self._buf) or self._need >= 0

    @property
    def missing(self) -> int:
        """Bytes still to come before the frame being read is complete (0: not known yet).

        A driver may size its next read by it (one large read instead of many).
        """
        if self._need < 0:
            return 0
        return max(0, self._need - len(self._buf) - self._have)

    def next_frame(self) -> bytes | NeedData:
        """Take the next whole frame's payload out of the buffer.

        Returns:
            The payload (``bytes``, ``b""`` for a zero-length frame), or
            ``NEED_DATA`` while the header or the payload is incomplete.
            Call it again until ``NEED_DATA``: one :meth:`feed` may complete
            several frames.

        Raises:
            RemoteProtocolError: (FRAME-3) as soon as the buffered start of a
                header holds a byte other than a digit or a space -- before the
                10 bytes are in; (``limit_rule``: FRAME-6, or JOIN-6 for a
                username) when the declared length exceeds ``max_payload``,
                from the header alone, before any of the payload is buffered.

        After an error the bad bytes stay where they were, so every later call
        raises the same error: the stream cannot be framed again.
        """
        buf = self._buf
        need = self._need
        if need < 0:
            if len(buf) < HEADER_LENGTH:
                if buf and not _HEADER_BYTES.issuperset(buf):
                    raise RemoteProtocolError(
                        f"header starts with {bytes(buf)!r}, which is not a decimal length",
                        "FRAME-3",
                    )
                return NEED_DATA
            need = parse_header(buf[:HEADER_LENGTH])
            if need > self.max_payload:
                raise RemoteProtocolError(
                    f"{self.limit_what} {need} exceeds the limit of {self.max_payload} bytes",
                    self.limit_rule,
                )
            del buf[:HEADER_LENGTH]
            self._need = need
            if len(buf) < need and need - len(buf) >= _JOIN_AT:
                self._chunks = [bytes(buf)] if buf else []
                self._have = len(buf)
                buf.clear()
                return NEED_DATA
        elif self._chunks is not None:
            return self._join_payload(need)
        if len(buf) < need:
            return NEED_DATA
        if len(buf) == need:  # common for large frames: take it all, one copy
            payload = bytes(buf)
            buf.clear()
        else:
            with memoryview(buf) as view:  # one copy, not two as bytes(buf[:need]) makes
                payload = bytes(view[:need])
            del buf[:need]
        self._need = -1
        return payload

    def take_frames(self, data: bytes) -> tuple[list[bytes], RemoteProtocolError | None]:
        """``feed(data)``, then every whole frame now buffered, and the error that stopped them.

        The batch form of :meth:`next_frame` for a server, which reads one or a
        few small frames per ``recv``: when nothing is left over from an earlier
        read, the frames are sliced from ``data`` where it lies (no copy into
        the buffer and out again), and a header seen before is not parsed
        again.  An incomplete tail is kept as ``next_frame`` keeps it: its
        header checked at once, a large payload collected in pieces.  The same
        checks as ``next_frame``, in the same order (the loop is
        ``_split_frames``, shared with the clients' batch read): frames before a
        bad one are returned with the error, a fresh one without a traceback.
        """
        frames: list[bytes] = []
        if self._need >= 0 or self._buf or self._chunks is not None:
            try:
                self.feed(data)  # bytes left over from before: one frame at a time
                while (frame := self.next_frame()) is not NEED_DATA:
                    frames.append(frame)
            except RemoteProtocolError as exc:
                # A copy, without the traceback whose frames hold our caller's objects.
                return frames, RemoteProtocolError(exc.reason, exc.requirement)
            return frames, None
        pos, need, error = _split_frames(self, data, 0, -1, frames)
        # The tail: a partial header, or a payload whose header was read (``need``, perhaps
        # with none of its bytes yet), or after an error the bad bytes, as next_frame keeps them.
        self._need = need
        rest = len(data) - pos
        if need - rest >= _JOIN_AT:  # a large payload (never after an error: need is -1): pieces
            tail = data[pos:] if pos else data
            self._chunks = [tail if type(tail) is bytes else bytes(tail)] if rest else []
            self._have = rest
        elif rest:
            self._buf += data[pos:] if pos else data
        return frames, error

    def _join_payload(self, need: int) -> bytes | NeedData:
        chunks = self._chunks
        assert chunks is not None
        extra = self._have - need
        if extra < 0:
            return NEED_DATA
        if extra:  # the last piece also holds the start of the next frame
            last = chunks[-1]
            keep = len(last) - extra  # > 0: before ``last`` the payload was incomplete
            self._buf += memoryview(last)[keep:]
            chunks[-1] = last[:keep]
        payload = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._chunks = None
        self._have = 0
        self._need = -1
        return payload


def _encode_text(text: str, what: str) -> bytes:
    """UTF-8 bytes of ``text``; a lone surrogate is our caller's error, not a UnicodeError."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LocalProtocolError(
            f"{what} cannot be sent as UTF-8 (FRAME-4): {text[exc.start:exc.end]!r} "
            f"at index {exc.start} is a lone surrogate") from None


def _next_frames(decoder: FrameDecoder, fresh: bytes = b"") -> tuple[list[bytes], RemoteProtocolError | None]:
    """Every whole frame buffered in ``decoder``, in one pass, and the error that stopped it.

    The batch form of ``FrameDecoder.next_frame`` for receivers that take
    many frames per read: the same checks, but the buffer is copied and
    trimmed once, not per frame, and a header seen before is not parsed again
    (a load test repeats a handful of lengths).  Frames before a bad one are
    returned with the error.
    """
    if decoder._chunks is not None:  # a large payload's pieces, kept by next_frame: rejoin them
        decoder._buf += b"".join(decoder._chunks)
        decoder._chunks, decoder._have = None, 0
    buf, need = decoder._buf, decoder._need
    if buf:
        buf += fresh
        data = bytes(buf)
    else:  # nothing left over from the last read: parse the new bytes where they are
        data = fresh
    frames: list[bytes] = []
    pos, need, error = _split_frames(decoder, data, 0, need, frames)
    if data is fresh:
        buf += data[pos:]  # only the incomplete tail is kept
    else:
        del buf[:pos]
    decoder._need = need
    return frames, error


def _split_frames(decoder: FrameDecoder, data: bytes, pos: int, need: int,
                  frames: list[bytes]) -> tuple[int, int, RemoteProtocolError | None]:
    """The header/limit loop of both batch readers (``FrameDecoder.take_frames``, ``_next_frames``).

    Appends to ``frames`` every whole frame of ``data`` from ``pos`` on; ``need`` is the
    payload length of a frame whose header ended before ``pos`` (-1: ``pos`` is at a header).
    A header seen before is not parsed again (``_KNOWN_HEADERS``).  The checks are
    ``next_frame``'s, in its order: FRAME-3 as soon as a partial header holds a byte that no
    header can, FRAME-3 for a whole bad header, the limit (``limit_rule``) from the header
    alone, before any of its payload is taken.

    Returns ``(pos, need, error)``: where the unread tail begins (at the bad header after an
    error), the length of the frame whose payload it begins (-1: it begins a header), and
    the error that stopped the loop, or None.  The error is made here, never raised out of
    it: it has no traceback, so it holds none of the caller's objects.
    """
    end = len(data)
    if need >= 0:  # the rest of a payload whose header came before
        if end - pos < need:
            return pos, need, None
        frames.append(data[pos:pos + need])
        pos += need
    limit, known, width, append = decoder.max_payload, _KNOWN_HEADERS, HEADER_LENGTH, frames.append
    while end - pos >= width:
        header = data[pos:pos + width]
        need = known.get(header, -1)
        if need < 0:
            try:
                need = parse_header(header)
            except RemoteProtocolError as exc:
                return pos, -1, RemoteProtocolError(exc.reason, exc.requirement)
            if len(known) < _KNOWN_HEADERS_MAX:
                known[header] = need
        if need > limit:
            return pos, -1, RemoteProtocolError(
                f"{decoder.limit_what} {need} exceeds the limit of {limit} bytes", decoder.limit_rule)
        start = pos + width
        if end - start < need:
            return start, need, None
        append(data[start:start + need])
        pos = start + need
    if pos < end and not _HEADER_BYTES.issuperset(data[pos:]):
        return pos, -1, RemoteProtocolError(
            f"header starts with {bytes(data[pos:])!r}, which is not a decimal length", "FRAME-3")
    return pos, -1, None


#: Valid headers already parsed, and their lengths (only valid ones: a bad header always raises).
_KNOWN_HEADERS: dict[bytes, int] = {}
_KNOWN_HEADERS_MAX = 4096
_UNKNOWN: Final = -(2**62)  # not in _KNOWN_HEADERS: never a difference of two lengths


def _decode_text(payload: bytes, what: str) -> str:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError(
            f"{what} is not valid UTF-8 (byte {exc.start}: {payload[exc.start:exc.start + 4]!r})",
            "FRAME-4",
        ) from None


def _relays(frames: list[bytes]) -> list[Relay]:
    """Relays from flat, validated ``[sender, text, ...]`` payloads (``receive_relay_frames``)."""
    relays = []
    for i in range(0, len(frames), 2):
        relay = _new(Relay)  # Relay(sender, text), without the frozen __init__'s calls
        _set_sender(relay, frames[i].decode("utf-8"))
        _set_text(relay, frames[i + 1].decode("utf-8"))
        relays.append(relay)
    return relays


# --------------------------------------------------------------------------
# Connection level: frames <-> events, with the join/relay state machine.
# --------------------------------------------------------------------------
class Role(enum.Enum):
    """Which end of the connection *we* are."""

    CLIENT = "client"
    SERVER = "server"


class Connection:
    """The state of one connection, seen from ``our_role``.

    As the SERVER we receive Register then Messages and send Relays.
    As the CLIENT we send Register then Messages and receive Relays.

    After the peer breaks the protocol the connection is in an ERROR state,
    as h11's is: the stream can no longer be framed, so every later
    ``next_event`` raises RemoteProtocolError again instead of pairing stale
    state (half a relay, half a header) with whatever bytes come next.
    """

    __slots__ = ("_closed", "_decoder", "_max_payload", "_messages_in", "_pending_sender",
                 "_registered_in", "_registered_out", "error", "our_role", "name")

    def __init__(self, our_role: Role, *, max_payload: int = DEFAULT_MAX_PAYLOAD,
                 max_username: int = DEFAULT_MAX_USERNAME) -> None:
        self.our_role = our_role
        self._decoder = FrameDecoder(max_payload)
        self._max_payload = max_payload
        if our_role is Role.SERVER:
            # The username's declared length is checked from its header alone,
            # before buffering it (JOIN-6), as FRAME-6 does for messages.
            self._decoder.max_payload = min(max_username, max_payload)
            self._decoder.limit_rule = "JOIN-6"
            self._decoder.limit_what = "declared username length"
        self._closed = False
        #: The protocol error that put the connection in the ERROR state, if any (an attribute,
        #: not a property: a server reads it after every read).
        self.error: RemoteProtocolError | None = None
        self._registered_in = False   # server side: the peer has sent its username
        #: Server side: registered, open and not in ERROR -- receive_messages' one test.
        self._messages_in = False
        self._registered_out = False  # client side: we have sent our username
        self._pending_sender: str | None = None  # client side: first half of a Relay
        #: The peer's username (server side) or our own (client side), once known.
        self.name: str | None = None

    # -- receiving --------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        """Add bytes from the peer; ``b""`` means the peer closed its side.

        Nothing is parsed here: call :meth:`next_event` (or the batch forms)
        afterwards.  In the ERROR state the bytes are dropped, not held.

        Raises:
            LocalProtocolError: if bytes come after ``b""`` (our caller's
                mistake).  A second ``b""`` is allowed and changes nothing.
        """
        if data:
            if self._closed:
                raise LocalProtocolError("receive_data after end of stream")
            if self.error is None:  # in ERROR nothing is parsed: do not hold it either
                self._decoder.feed(data)
        else:
            self._closed = True
            self._messages_in = False

    def next_event(self) -> Event | NeedData:
        """Parse the next event out of the bytes received so far.

        Returns:
            As the SERVER: ``Register`` (the first frame) then ``Message``
            (every later one, ``payload`` holding the validated bytes).  As the
            CLIENT: ``Relay`` once both its frames are in.  ``ConnectionClosed``
            after ``receive_data(b"")`` on a frame boundary -- and again on
            every later call.  ``NEED_DATA`` when no whole event is buffered.

        Raises:
            RemoteProtocolError: with the rule broken in ``requirement``:
                FRAME-3 (a bad header), FRAME-4 (a payload that is not UTF-8),
                FRAME-6 (a declared length over ``max_payload``), JOIN-6 (a
                username over ``max_username``, from its header), JOIN-2 (an
                empty username), FRAME-1 (the peer closed mid-frame, or as the
                client between a relay's two frames).

        After it raises, the connection is in the ERROR state (``errored``):
        every later call raises again, naming the first error, as h11 does.
        """
        if self.error is not None:
            raise RemoteProtocolError(
                f"connection is in ERROR state after: {self.error.reason}",
                self.error.requirement)
        try:
            return self._next_event()
        except RemoteProtocolError as exc:
            self._enter_error(exc)
            raise

    def _enter_error(self, exc: RemoteProtocolError) -> None:
        # A copy without the traceback: the traceback's frames hold the
        # caller's objects (a server's client), and keeping them here would
        # make a reference cycle that only the garbage collector frees.
        self.error = RemoteProtocolError(exc.reason, exc.requirement)
        self._messages_in = False
        self._pending_sender = None
        self._decoder = FrameDecoder(0)  # free the buffered bytes now

    def _next_event(self) -> Event | NeedData:
        while True:
            payload = self._decoder.next_frame()
            if payload is NEED_DATA:
                if self._closed:
                    if self._decoder.mid_frame or self._pending_sender is not None:
                        raise RemoteProtocolError("connection closed in the middle of a frame",
                                                  "FRAME-1")
                    return ConnectionClosed()
                return NEED_DATA
            assert isinstance(payload, bytes)
            if self.our_role is Role.SERVER:
                if self._registered_in:
                    return Message(_decode_text(payload, "message"), payload)
                name = _decode_text(payload, "username")
                if not name:
                    raise RemoteProtocolError("username is empty", "JOIN-2")
                self._registered_in = True
                self._messages_in = not self._closed
                self._decoder.max_payload = self._max_payload
                self._decoder.limit_rule = "FRAME-6"
                self._decoder.limit_what = "declared length"
                self.name = name
                return Register(name)
            text = _decode_text(payload, "relayed frame")
            if self._pending_sender is None:
                self._pending_sender = text
                continue
            sender, self._pending_sender = self._pending_sender, None
            return Relay(sender, text)

    @property
    def errored(self) -> bool:
        """Whether the peer broke the protocol (no further event will be parsed)."""
        return self.error is not None

    def next_message(self) -> bytes | Event | NeedData:
        """Server side: ``next_event``, except that a chat message comes back as its payload.

        Returns:
            The message's payload (``bytes``, validated UTF-8, FRAME-4) once
            registered; before that, and at the end of the stream or in the
            ERROR state, exactly what :meth:`next_event` returns.

        Raises:
            RemoteProtocolError: as :meth:`next_event`, entering the same ERROR state.

        The relay path needs only the payload bytes, validated exactly as for
        ``Message.payload`` (FRAME-4), so the Message object and the decoded
        text are skipped.  Every other event comes back as ``next_event`` makes it.
        """
        if not self._registered_in or self._closed or self.error is not None:
            return self.next_event()
        try:
            payload = self._decoder.next_frame()
            if payload is NEED_DATA:
                return NEED_DATA
            assert isinstance(payload, bytes)
            # Pure ASCII is valid UTF-8, and isascii() is a fast scan that
            # allocates nothing; anything else is validated by decoding it.
            if not payload.isascii():
                _decode_text(payload, "message")
        except RemoteProtocolError as exc:
            self._enter_error(exc)  # the same ERROR state as next_event's
            raise
        return payload

    def receive_messages(self, data: bytes) -> list[bytes]:
        """Server side, once the peer has registered: :meth:`receive_data` then every whole
        chat message's payload, validated as :meth:`next_message` validates it.

        The batch form of ``next_message`` for a server's read loop (one call
        per ``recv``, not two or more).  ``data`` must not be empty (end of
        stream goes through ``receive_data`` and ``next_event``).  A bad frame
        raises RemoteProtocolError when it is the first one; after good ones,
        they are returned and the connection is in the ERROR state
        (:attr:`errored`, :attr:`error`), so nothing good is lost to it and
        nothing after it is parsed.
        """
        decoder = self._decoder
        if self._messages_in:
            # The commonest read of all: one whole frame, its header seen before, nothing
            # left over from the last read (``_chunks`` is only ever set with ``_need >= 0``).
            if decoder._need < 0 and not decoder._buf:
                need = _KNOWN_HEADERS.get(data[:HEADER_LENGTH], _UNKNOWN)  # lengths are >= 0
                if need == len(data) - HEADER_LENGTH and need <= decoder.max_payload:
                    payload = data[HEADER_LENGTH:]
                    if payload.isascii():
                        return [payload]
            if not data:
                raise LocalProtocolError("receive_messages takes bytes from a registered, open peer")
        elif self.error is not None:
            raise RemoteProtocolError(
                f"connection is in ERROR state after: {self.error.reason}", self.error.requirement)
        else:
            raise LocalProtocolError("receive_messages takes bytes from a registered, open peer")
        frames, error = decoder.take_frames(data)
        for i, payload in enumerate(frames):
            # Pure ASCII is valid UTF-8, and isascii() is a fast scan that
            # allocates nothing; anything else is validated by decoding it.
            if not payload.isascii():
                try:
                    _decode_text(payload, "message")
                except RemoteProtocolError as exc:
                    error, frames = RemoteProtocolError(exc.reason, exc.requirement), frames[:i]
                    break
        if error is not None:
            self._enter_error(error)
            if not frames:
                # A fresh exception: raising ``error`` would give it a traceback through
                # this frame, which holds ``error``: a cycle with our caller's objects.
                raise RemoteProtocolError(error.reason, error.requirement)
        return frames

    def receive_relays(self, data: bytes) -> list[Relay]:
        """Client side: :meth:`receive_data` then :meth:`next_relays`, without copying ``data``
        into the buffer first when nothing was left over from the previous read.

        Returns and raises as :meth:`next_relays`; ``b""`` ends the stream as
        in :meth:`receive_data` and returns ``[]`` even when a frame was cut
        short: ``mid_frame`` tells that case (FRAME-1) apart.
        """
        return _relays(self.receive_relay_frames(data))

    def next_relays(self) -> list[Relay]:
        """Client side: every whole relay buffered now, decoded in one pass ([] when none).

        For receivers that get many relays per read: the same checks as
        :meth:`next_event`, without a call per frame.  A bad frame raises
        RemoteProtocolError on the call after the one that returns the relays
        before it, so nothing good is lost to it.

        Returns:
            The whole relays, in order; ``[]`` when none is complete (never
            ``NEED_DATA``).  A sender frame whose message frame has not come
            yet is kept for the next call.  The end of the stream is not an
            event here: ``[]`` (check ``mid_frame`` to tell a clean close).

        Raises:
            LocalProtocolError: if called as the SERVER.
            RemoteProtocolError: FRAME-3, FRAME-4 or FRAME-6 as in
                :meth:`next_event`, once no good relay is left to return
                (``error_pending`` says one is waiting); then ERROR state.
        """
        return _relays(self.next_relay_frames())

    def receive_relay_frames(self, data: bytes) -> list[bytes]:
        """Client side: :meth:`receive_relays` without the Relay objects and their text.

        Returns:
            The payloads of every whole relay, flat and in order:
            ``[sender, text, sender, text, ...]``, each checked to be UTF-8
            (FRAME-4) but left as bytes.  For load generators, which judge
            every delivery and mostly need neither the objects nor the text
            (``Relay(sender.decode(), text.decode())`` is the relay).

        Raises as :meth:`next_relays`; ``b""`` ends the stream as in
        :meth:`receive_data` and returns ``[]``.
        """
        if not data or self._closed or self.error is not None:
            self.receive_data(data)
            return self.next_relay_frames()
        decoder = self._decoder
        if self._pending_sender is None and decoder._need < 0 and not decoder._buf \
                and decoder._chunks is None and self.our_role is Role.CLIENT:
            # The commonest read of a receiver that keeps up: exactly one relay, both
            # headers seen before, ASCII (valid UTF-8 without decoding it).
            first = _KNOWN_HEADERS.get(data[:HEADER_LENGTH], -1)
            mid = HEADER_LENGTH + first
            second = _KNOWN_HEADERS.get(data[mid:mid + HEADER_LENGTH], -1)
            if first >= 0 and second >= 0 and mid + HEADER_LENGTH + second == len(data) \
                    and first <= decoder.max_payload and second <= decoder.max_payload:
                sender, text = data[HEADER_LENGTH:mid], data[mid + HEADER_LENGTH:]
                if sender.isascii() and text.isascii():
                    return [sender, text]
        return self.next_relay_frames(data)

    def next_relay_frames(self, _fresh: bytes = b"") -> list[bytes]:
        """Client side: :meth:`next_relays` as flat payloads (:meth:`receive_relay_frames`)."""
        if self.our_role is not Role.CLIENT:
            raise LocalProtocolError("only a client receives relays")
        if self.error is not None:
            raise RemoteProtocolError(
                f"connection is in ERROR state after: {self.error.reason}", self.error.requirement)
        decoder = self._decoder
        # A read that is all ASCII, with nothing left over from the last one, holds only
        # valid UTF-8: one scan of the read instead of one a frame.
        ascii_read = bool(_fresh) and not decoder._buf and decoder._chunks is None and _fresh.isascii()
        frames, error = _next_frames(decoder, _fresh)
        pending = self._pending_sender
        good = len(frames)
        for i, payload in enumerate(() if ascii_read else frames):
            # Pure ASCII is valid UTF-8, and isascii() is a fast scan that
            # allocates nothing; anything else is validated by decoding it.
            if not payload.isascii():
                try:
                    _decode_text(payload, "relayed frame")
                except RemoteProtocolError as exc:
                    error, good = RemoteProtocolError(exc.reason, exc.requirement), i
                    break
        if pending is not None and good:
            # The sender frame of a relay that straddled two reads (kept decoded, as
            # next_event keeps it): its message frame came now.
            frames.insert(0, pending.encode("utf-8"))
            pending, good = None, good + 1
        if good % 2:
            pending = frames[good - 1].decode("utf-8")  # a sender frame without its message yet
            good -= 1
        del frames[good:]
        self._pending_sender = pending
        if error is not None:
            self._enter_error(error)  # the next call raises; relays before the bad frame are kept
            if not frames:
                # A fresh exception: raising ``error`` would give it a traceback through
                # this frame, which holds ``error``: a cycle with our caller's objects.
                raise RemoteProtocolError(error.reason, error.requirement)
        return frames

    @property
    def error_pending(self) -> bool:
        """Whether the next :meth:`next_relays` raises (a bad frame came after good relays)."""
        return self.error is not None

    @property
    def registered(self) -> bool:
        """Server side: whether the peer has sent its username."""
        return self._registered_in

    @property
    def buffered(self) -> int:
        """How many received bytes are not yet part of a returned event (0 in ERROR)."""
        decoder = self._decoder  # FrameDecoder.buffered, inlined: a server asks after every read
        return len(decoder._buf) + decoder._have

    @property
    def mid_frame(self) -> bool:
        """True when part of a frame, or a relay's sender frame without its message, is buffered.

        At the end of the stream this is what tells a clean close (False)
        from a cut one (FRAME-1).
        """
        return self._decoder.mid_frame or self._pending_sender is not None

    @property
    def missing(self) -> int:
        """Bytes still to come before the frame being read is complete (0: not known yet)."""
        return self._decoder.missing

    # -- sending ----------------------------------------------------------
    def send(self, event: Event) -> bytes:
        """The bytes that put ``event`` on the wire.

        Returns:
            As the SERVER, for a ``Relay``: the sender's frame then the
            message's frame.  As the CLIENT: one frame for ``Register`` (the
            first thing sent) and for each ``Message``; a ``Message`` with a
            ``payload`` sends those bytes as they are (a server relaying
            without re-encoding), otherwise ``text`` encoded as UTF-8.  An
            empty message is a zero-length frame; an empty Relay sender is
            not refused (the server never has one: JOIN-2).

        Raises:
            LocalProtocolError: for an event this role cannot send (a server's
                Register or Message, a client's Relay or ConnectionClosed),
                Register twice or with an empty name, a Message before
                Register, text with a lone surrogate (it has no UTF-8 form,
                FRAME-4), or a frame too long for a 10-digit header.  State
                changes only when the bytes are returned.
        """
        if self.our_role is Role.SERVER:
            if isinstance(event, Relay):
                return (encode_frame(_encode_text(event.sender, "sender"))
                        + encode_frame(_encode_text(event.text, "message")))
            raise LocalProtocolError(f"a server cannot send {type(event).__name__}")
        if isinstance(event, Register):
            if self._registered_out:
                raise LocalProtocolError("already registered")
            if not event.name:
                raise LocalProtocolError("username must not be empty")
            wire = encode_frame(_encode_text(event.name, "username"))
            self._registered_out = True
            self.name = event.name
            return wire
        if isinstance(event, Message):
            if not self._registered_out:
                raise LocalProtocolError("send Register before any Message")
            return encode_frame(event.payload or _encode_text(event.text, "message"))
        raise LocalProtocolError(f"a client cannot send {type(event).__name__}")
