"""The reference chat server: select-style, single-threaded, robust.

Same protocol and the same shape as the classic tutorial server (one loop
around ``select``), with the fixes that PROTOCOL.md's ROBUST rules demand:

* sockets are non-blocking and every connection has its own input buffer
  (the codec), so a header split across packets or a client that says
  nothing never blocks the loop (ROBUST-1, ROBUST-2);
* every connection has its own output buffer: we write directly when the
  socket takes it, keep only the remainder, and when a backlog passes
  ``max_backlog`` we drop whoever causes it: the reader if it reads slower
  than the sender sends, else the sender whose relays fill the queue
  (ROBUST-3, ROBUST-4, ROBUST-8);
* usernames are short (JOIN-6), so a sender cannot make the server owe its
  readers far more than it sent; all buffered bytes and connections count
  against one server-wide budget, ``--max-memory`` (LIMIT-3);
* a peer's protocol error drops that peer only (ROBUST-5);
* an event for a connection closed earlier in the same batch of selector
  events is ignored, even when a newcomer already has its fd number;
* with ``--tls-cert``/``--tls-key`` (or ``--tls-self-signed``) every connection
  is TLS, its handshake driven by the same loop (SSLWantRead/SSLWantWrite), so
  a client that stalls mid-handshake or sends plaintext hurts nobody, and what
  OpenSSL already decrypted (``pending()``, invisible to select) is read at once;
* with ``--selector select`` we refuse connections whose fd select() cannot
  watch instead of crashing at FD_SETSIZE, and on EMFILE we shed the new
  connection instead of spinning (LIMIT-1, LIMIT-2).

Run it as ``chat-server`` or ``python -m reference.server``.  Its first line
on stdout names the address it listens on, so a harness can read the port.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import logging
import os
import platform
import select
import selectors
import signal
import socket
import ssl
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reference import exit_codes
from reference.cli_args import history_size, port_number, positive_int
from reference.profiles import (
    DEFAULT_HISTORY_MESSAGES,
    HISTORY_PREFIX,
    MAX_HISTORY_MESSAGES,
    MIN_HISTORY_MESSAGES,
    PROFILES,
    SERVER_NAME,
    History,
    is_reserved,
    parse_dm,
    parse_profiles,
    unknown_recipient_notice,
)
from reference.protocol import (
    DEFAULT_HOST,
    DEFAULT_MAX_PAYLOAD,
    DEFAULT_MAX_USERNAME,
    DEFAULT_PORT,
    HEADER_LENGTH,
    NEED_DATA,
    Connection,
    ConnectionClosed,
    Message,
    Register,
    RemoteProtocolError,
    encode_frame,
    encode_header,
)
from reference.server_output import (
    CLIENT_OVERHEAD,
    DEAD_CONNECTION,
    RECV_SIZE,
    TLS_OVERHEAD,
    WOULD_BLOCK,
    OutputQueues,
)
from reference.server_output import Client as Client  # re-exported: test servers subclass with it
from reference.tls import CA_LINE_PREFIX, TLSSetupError, self_signed, server_context
from reference.version import add_version_argument

if sys.platform != "win32":  # no RLIMIT_NOFILE on Windows: see raise_fd_limit
    import resource

log = logging.getLogger("chat-server")

#: POSIX select() cannot watch file descriptors at or above this number; Windows'
#: select() takes any socket handle but at most this many sockets in all.
FD_SETSIZE = 512 if sys.platform == "win32" else 1024
#: The largest single read, for the rest of a large frame (see _on_readable).
_MAX_RECV = 1024 * 1024
_ACCEPTS_PER_WAKEUP = 256
_WAKEUP = object()  # selector data of the self-pipe
_EPOLLIN: int = getattr(select, "EPOLLIN", 1)  # (Linux only: getattr for the type checker elsewhere)
_EPOLLOUT: int = getattr(select, "EPOLLOUT", 4)
_READ = selectors.EVENT_READ  # module constants: one global load, not a global and an attribute
_WRITE = selectors.EVENT_WRITE
#: Relays coalesced in one batch of events (see _broadcast): only relays up to this size
#: (a larger one is sent at once, one copy saved per reader), and at most this many
#: (relay, reader) pairs and bytes of relays before they are sent, mid-batch if need be.
COALESCE_MAX_RELAY = 16 * 1024
COALESCE_MAX_ENTRIES = 64 * 1024
COALESCE_MAX_BYTES = 256 * 1024
#: How long the loop waits for events while it has something to do on a clock (see _timeout).
_TICK = 1.0
_ACCEPT_BACKOFF = 0.1  # seconds the listener rests after an accept() error we cannot shed
#: Connections are refused once this share of --max-memory is held, so that
#: the clients already in have room for their frames.
_ACCEPT_SHARE = 0.75
SELECTORS = {
    "select": getattr(selectors, "SelectSelector", None),
    "poll": getattr(selectors, "PollSelector", None),
    "epoll": getattr(selectors, "EpollSelector", None),
    "kqueue": getattr(selectors, "KqueueSelector", None),
    "auto": selectors.DefaultSelector,
}


@dataclass(frozen=True)
class ServerConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_payload: int = DEFAULT_MAX_PAYLOAD
    max_clients: int = 100_000
    max_backlog: int = 16 * 1024 * 1024
    max_username: int = DEFAULT_MAX_USERNAME
    max_memory: int = 1024 * 1024 * 1024
    register_timeout: float = 60.0
    selector: str = "auto"
    backlog: int = 4096
    #: The optional profiles served (PROTOCOL.md section 8): "dm", "history".
    profiles: frozenset[str] = frozenset()
    history_size: int = DEFAULT_HISTORY_MESSAGES
    #: Serve TLS with this context (PROTOCOL.md "Profile: tls"); None = plain TCP.
    tls: ssl.SSLContext | None = None


class ChatServer(OutputQueues):
    """The event loop.  ``serve_forever`` runs until ``stop`` or a signal."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.max_backlog = config.max_backlog
        self.max_memory = config.max_memory
        selector_cls = SELECTORS.get(config.selector)
        if selector_cls is None:
            raise ValueError(f"selector {config.selector!r} is not available on this platform")
        self.selector: selectors.BaseSelector = selector_cls()
        self.fd_limit = FD_SETSIZE if isinstance(self.selector, selectors.SelectSelector) else None
        self.listener = socket.create_server((config.host, config.port), backlog=config.backlog,
                                             reuse_port=False)
        self.listener.setblocking(False)
        self.selector.register(self.listener, selectors.EVENT_READ, None)
        self.address: tuple[str, int] = self.listener.getsockname()[:2]
        self.clients: dict[int, Client] = {}
        self.registered: dict[int, Client] = {}
        # Connections yet to send their username, oldest first (dicts keep
        # insertion order); a closed one leaves at once, so that one silent
        # connection cannot keep later closed ones in memory (JOIN-4).
        self._unregistered: dict[int, Client] = {}
        #: Bytes held for clients (queued output, partial input frames) plus
        #: CLIENT_OVERHEAD per connection: what --max-memory bounds (LIMIT-3).
        self.memory_held = 0
        #: What one connection costs whatever it sends: OpenSSL's share too over TLS.
        self.connection_cost = CLIENT_OVERHEAD + (TLS_OVERHEAD if config.tls is not None else 0)
        self._accept_resume = 0.0      # monotonic time to resume accepting, 0 = accepting
        self._running = False
        self._tls_eof = False  # _recv_tls met an EOF after data: run_once reads again
        # Self-pipe: a signal handler only clears ``_running``; the byte that
        # signal.set_wakeup_fd writes here wakes select() so we notice at once.
        self._wakeup_r, self._wakeup_w = socket.socketpair()
        self._wakeup_r.setblocking(False)
        self._wakeup_w.setblocking(False)
        self.selector.register(self._wakeup_r, selectors.EVENT_READ, _WAKEUP)
        # A spare fd so that on EMFILE we can still accept-and-close (shedding
        # the connection) instead of leaving the listener readable forever.
        self._spare_fd: int | None = os.open(os.devnull, os.O_RDONLY)
        # epoll's own object, to poll without selectors' per-event Python (see _ready); the
        # selector still does every register / modify / unregister.
        epoll = getattr(self.selector, "_selector", None) if isinstance(
            self.selector, getattr(selectors, "EpollSelector", ())) else None
        self._epoll: Any = epoll if isinstance(epoll, getattr(select, "epoll", ())) else None
        self._listener_fd = self.listener.fileno()
        # _broadcast inlines _write's common case, unless a subclass (a test server
        # with a defect in its writes) overrides _write: then every write goes through it.
        # Nor over TLS, where a send that would block must keep its bytes (see _write).
        self._inline_write = type(self)._write is ChatServer._write and config.tls is None
        self._tls = config.tls is not None
        # Coalescing (see _broadcast): on the inline path only, and not for a subclass with a
        # _broadcast of its own (a test server's defect), which keeps writing as it always did.
        self._coalescing = self._inline_write and type(self)._broadcast is ChatServer._broadcast
        self._coalesce = False  # in a batch of several events: relays wait for its end
        self._touched: list[Client] = []
        self._batch_relays: list[tuple[bytes, Client, int]] = []
        self._refused: set[Client] = set()
        self._batch_entries = self._batch_bytes = 0
        # A subclass's _expire_unregistered is its periodic hook: it runs after every wakeup
        # and the loop wakes at least once a _TICK, as it always did (see _timeout).
        self._ticking = type(self)._expire_unregistered is not ChatServer._expire_unregistered
        # Profiles (PROTOCOL.md section 8): off unless claimed, so the base path stays as it was.
        self.dm = "dm" in config.profiles
        # "replay", not "history": test servers that subclass this keep a "history" of their own.
        self.replay = History(config.history_size) if "history" in config.profiles else None

    # -- main loop ----------------------------------------------------------
    def serve_forever(self) -> None:
        self._running = True
        try:
            if self._epoll is not None and not self._ticking and not self._tls:
                self._serve_epoll()
            else:
                while self._running:
                    self.run_once(self._timeout())
        finally:
            log.info("shutting down")
            self.close()

    def _serve_epoll(self) -> None:
        """``serve_forever`` over epoll: ``run_once`` in a loop, with its commonest wakeup inline.

        That wakeup is one small message: a batch of exactly one event, a client
        readable and nothing else.  It needs none of the batch handling (no
        other event can be stale, nothing to coalesce), so it goes straight to
        ``_on_readable``; every other batch goes through ``_handle`` as in
        ``run_once``.  Measured: 350 -> 295 Python opcodes per one-receiver relay
        (docs/bench.md, "Performance").
        """
        poll = self._epoll.poll
        clients = self.clients
        on_readable = self._on_readable
        while self._running:
            try:
                events = poll(None if not self._unregistered and not self._accept_resume
                              else self._timeout(), len(clients) + 2)
            except InterruptedError:
                continue
            if len(events) == 1:
                fd, event = events[0]
                client = clients.get(fd)  # a live client: dropped ones leave ``clients`` at once
                if event == _EPOLLIN and client is not None:  # (no TLS here: no handshakes)
                    on_readable(client)
                    if self._unregistered or self._accept_resume:
                        self._after_batch()
                    continue
            self._handle(self._resolve(events))

    def run_once(self, timeout: float | None) -> None:
        """Wait up to ``timeout`` for one batch of selector events and handle it.

        ``serve_forever`` is this in a loop (over epoll with a one-event batch handled
        inline: ``_serve_epoll``); tests call it to step the server.
        """
        self._handle(self._ready(timeout))

    def _handle(self, ready: list[tuple[Any, int]]) -> None:
        """Handle one batch of events, each already resolved to its object (see ``_ready``)."""
        for client, mask in ready:
            if client is None:
                self._accept()
                continue
            if client is _WAKEUP:
                self._drain_wakeup()
                continue
            # A client dropped earlier in this batch (while relaying, say)
            # still has its events here, and its fd number may already be a
            # newcomer's: test the object, never the fd.  One attribute test.
            if client.closed:
                continue
            if client.handshaking:
                self._handshake(client)
                continue
            if mask & _READ:
                self._on_readable(client)
                # Bytes OpenSSL decrypted but we did not take: select() will not say so.
                # Nor an EOF that OpenSSL read behind the last record: read it now, or we
                # would relay to a connection TLS has closed.
                while self._tls and not client.closed and self._tls_more(client):
                    self._tls_eof = False
                    self._on_readable(client)
            if mask & _WRITE and not client.closed:
                self._flush(client)
        if self._coalesce:  # (set by _ready)
            self._flush_pending()
            self._coalesce = False
            self._inline_write = True
        self._after_batch()

    def _after_batch(self) -> None:
        """What is due on a clock after every wakeup: JOIN-4's expiry, the listener's rest."""
        if self._unregistered or self._ticking:  # also the periodic hook of test servers
            self._expire_unregistered()
        if self._accept_resume and time.monotonic() >= self._accept_resume:
            self._accept_resume = 0.0
            self.selector.register(self.listener, selectors.EVENT_READ, None)

    def _timeout(self) -> float | None:
        """How long ``serve_forever`` may wait for the next event.

        None (no timeout) when nothing is due on a clock: no connection waiting for its
        username (JOIN-4), no listener at rest, no subclass hook, and epoll.  Why: an
        epoll_wait with a timeout arms a kernel timer each time it blocks, and the loop
        blocks once per small message; measured on one pinned CPU, server CPU per
        1-receiver relay 0.94-0.98x with no timeout (docs/bench.md).
        """
        if self._accept_resume:
            return _ACCEPT_BACKOFF
        if self._unregistered or self._ticking or self._epoll is None:
            return _TICK
        return None

    def _ready(self, timeout: float | None) -> list[tuple[Any, int]]:
        """One batch of (selector data, EVENT_* mask), every fd resolved to its object first.

        Resolving the whole batch before handling any of it is what keeps a
        stale event away from a newcomer that reuses a closed client's fd.
        With epoll the batch comes straight from ``epoll.poll``: ``selectors``'
        own ``select`` costs a Python call per event, which was a measurable
        part of relaying one small message (docs/bench.md, "Performance").
        """
        epoll = self._epoll
        if epoll is None:
            events = self.selector.select(timeout)
            if len(events) > 1 and self._coalescing:
                self._start_coalescing()
            return [(key.data, mask) for key, mask in events]
        try:
            return self._resolve(epoll.poll(timeout, len(self.clients) + 2))  # None: no timeout
        except InterruptedError:
            return []

    def _resolve(self, events: list[tuple[int, int]]) -> list[tuple[Any, int]]:
        """``_ready``'s part for epoll: each (fd, epoll event) to (selector data, EVENT_* mask)."""
        if len(events) > 1 and self._coalescing:
            self._start_coalescing()
        clients = self.clients
        ready: list[tuple[Any, int]] = []
        for fd, event in events:
            client = clients.get(fd)
            if client is None:  # the listener or the self-pipe
                ready.append((None if fd == self._listener_fd else _WAKEUP, _READ))
                continue
            # As selectors does: an error or hang-up makes the socket readable and
            # writable, but a client only ever gets the events it asked for.
            if event == _EPOLLIN:  # the commonest event by far
                ready.append((client, _READ))
                continue
            mask = _READ if event & ~_EPOLLOUT else 0
            if event & ~_EPOLLIN and client.writing:
                mask |= _WRITE
            ready.append((client, mask))
        return ready

    def _start_coalescing(self) -> None:
        """A batch of several events (a busy room): each reader's relays of the batch go out
        in one send at its end (_flush_pending, from run_once).  One event, the quiet case,
        is sent at once, as before."""
        self._coalesce = True
        self._inline_write = False  # _broadcast's one test per message: not the direct path

    def stop(self) -> None:
        """Leave the loop at the next wakeup; safe to call from a signal handler."""
        self._running = False
        try:
            self._wakeup_w.send(b"\0")
        except OSError:
            pass

    def install_signal_handlers(self) -> None:
        """SIGINT and SIGTERM (and SIGBREAK, from CTRL_BREAK_EVENT, on Windows) stop the
        loop promptly (closing every connection)."""
        signal.set_wakeup_fd(self._wakeup_w.fileno(), warn_on_full_buffer=False)
        signals = [signal.SIGINT, signal.SIGTERM]
        if sys.platform == "win32":
            signals.append(signal.SIGBREAK)  # how reference.process_group stops a server there
        for sig in signals:
            signal.signal(sig, lambda signum, frame: self.stop())

    def _drain_wakeup(self) -> None:
        try:
            while self._wakeup_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def close(self) -> None:
        for client in list(self.clients.values()):
            self._drop(client, "server shutting down", level=logging.DEBUG)
        try:
            self.selector.unregister(self.listener)
        except (KeyError, ValueError):  # resting after an accept() error
            pass
        self.listener.close()
        self.selector.close()
        self._wakeup_r.close()
        self._wakeup_w.close()
        if self._spare_fd is not None:
            os.close(self._spare_fd)
            self._spare_fd = None

    # -- accepting ------------------------------------------------------------
    def _accept(self) -> None:
        for _ in range(_ACCEPTS_PER_WAKEUP):
            try:
                sock, addr = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE):
                    self._shed_one(exc)
                    return
                # Windows' accept() may report a peer that reset while queued as WSAECONNRESET
                if exc.errno in (errno.ECONNABORTED, errno.ECONNRESET, errno.EPROTO, errno.EPERM):
                    continue  # that one connection is gone (or a firewall said no)
                # ENOBUFS, ENOMEM or anything else: never die for the room; the
                # listener stays readable, so rest it instead of spinning.
                self._rest_listener(f"accept() failed ({exc.strerror or exc})")
                return
            reason = self._refusal_reason(sock)
            if reason:
                log.warning("refused %s:%s: %s", addr[0], addr[1], reason)
                sock.close()
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.config.tls is not None:
                # No handshake here: run_once drives it, so a stalled one blocks nobody (TLS-3).
                try:
                    sock = self.config.tls.wrap_socket(sock, server_side=True,
                                                       do_handshake_on_connect=False)
                except OSError as exc:  # reset (or closed with data unread) before we wrapped it
                    log.info("%s:%s gone before its TLS handshake: %s", addr[0], addr[1], exc)
                    sock.close()
                    continue
            client = Client(sock, addr, self.config.max_payload, self.config.max_username,
                            time.monotonic())
            client.handshaking = self.config.tls is not None
            self.clients[client.fd] = client
            self._unregistered[client.fd] = client
            self.memory_held += self.connection_cost
            self.selector.register(sock, selectors.EVENT_READ, client)
            log.debug("connection from %s", client.label)

    def _refusal_reason(self, sock: socket.socket) -> str | None:
        if len(self.clients) >= self.config.max_clients:
            return f"--max-clients {self.config.max_clients} reached"
        if self.memory_held + self.connection_cost > self.config.max_memory * _ACCEPT_SHARE:
            return (f"server memory budget reached ({self.memory_held} bytes held, "
                    f"--max-memory {self.config.max_memory})")
        if self.fd_limit is not None:
            return select_refusal(sock.fileno(), len(self.selector.get_map()), self.fd_limit)
        return None

    def _shed_one(self, exc: OSError) -> None:
        """Out of file descriptors: free the spare, accept and close one, retake it."""
        log.warning("out of file descriptors (%s): refusing a connection", exc.strerror)
        if self._spare_fd is None:  # lost earlier: rest, or the readable listener spins us
            self._rest_listener("no spare file descriptor to shed with")
            return
        os.close(self._spare_fd)
        self._spare_fd = None
        try:
            sock, _ = self.listener.accept()
            sock.close()
        except OSError:
            pass
        try:
            self._spare_fd = os.open(os.devnull, os.O_RDONLY)
        except OSError:  # ENFILE: the system, not we, is out; try again next time
            pass

    def _rest_listener(self, reason: str) -> None:
        """Stop accepting for _ACCEPT_BACKOFF seconds: the listener stays readable meanwhile."""
        log.warning("%s; not accepting for %g s", reason, _ACCEPT_BACKOFF)
        self.selector.unregister(self.listener)
        self._accept_resume = time.monotonic() + _ACCEPT_BACKOFF

    # -- TLS ----------------------------------------------------------------------
    def _handshake(self, client: Client) -> None:
        """One non-blocking step of a TLS handshake; wait for whichever way OpenSSL needs.

        A connection that never finishes stays unregistered, so --register-timeout
        closes it (JOIN-4); plaintext or a bad ClientHello is an SSLError: dropped.
        """
        sock = client.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._want(client, selectors.EVENT_READ)
            return
        except ssl.SSLWantWriteError:
            self._want(client, selectors.EVENT_READ | selectors.EVENT_WRITE)
            return
        except (ssl.SSLError, OSError) as exc:
            reason = exc.reason if isinstance(exc, ssl.SSLError) and exc.reason else exc
            self._drop(client, f"TLS handshake failed: {reason}", level=logging.INFO)
            return
        client.handshaking = False
        self._want(client, selectors.EVENT_READ)
        log.debug("%s: TLS handshake done (%s)", client.label, sock.version())
        self._on_readable(client)  # the username may have come with the Finished message

    def _want(self, client: Client, events: int) -> None:
        writing = bool(events & selectors.EVENT_WRITE)
        if writing != client.writing:
            client.writing = writing
            self.selector.modify(client.sock, events, client)

    def _tls_more(self, client: Client) -> bool:
        sock = client.sock
        return self._tls_eof or (isinstance(sock, ssl.SSLSocket) and sock.pending() > 0)

    def _recv_tls(self, sock: ssl.SSLSocket, size: int) -> bytes:
        """Up to ``size`` bytes: OpenSSL returns one record per read, and what it has
        already decrypted (``pending()``) select() cannot see, so read until it would block."""
        chunks: list[bytes] = []
        total = 0
        while total < size:
            try:
                chunk = sock.recv(size - total)
            except WOULD_BLOCK:
                if not chunks:
                    raise
                break
            if not chunk:  # EOF: give what came before it; the next read gives b""
                if not chunks:
                    return b""
                self._tls_eof = True
                break
            chunks.append(chunk)
            total += len(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    # -- reading ----------------------------------------------------------------
    def _on_readable(self, client: Client) -> None:
        conn = client.conn
        try:
            if not self._tls:
                data = client.sock.recv(client.recv_size)
            else:
                data = self._recv_tls(client.sock, client.recv_size)  # type: ignore[arg-type]
        except WOULD_BLOCK:
            return
        except OSError as exc:  # ECONNRESET and friends
            self._drop(client, f"connection error: {exc.strerror or exc}")
            return
        if data and conn.registered:  # the common case: chat messages, parsed in one pass
            try:
                payloads = conn.receive_messages(data)
            except RemoteProtocolError as exc:
                self._drop(client, f"protocol error: {exc}")
                return
            for payload in payloads:
                self._broadcast(client, payload)
                if client.closed:  # dropped for flooding while relaying (ROBUST-8)
                    return
            if conn.error is not None:  # a bad frame after the good ones just relayed
                self._drop(client, f"protocol error: {conn.error}")
                return
            # Nothing held and a read of the usual size: _account_input would change nothing
            # (even after a read of RECV_SIZE or more, which sizes the next read by what is held).
            if conn.buffered or client.in_bytes or client.recv_size != RECV_SIZE:
                self._account_input(client, conn, data)
            return
        conn.receive_data(data)
        try:
            while True:
                event = conn.next_message()
                if type(event) is bytes:
                    self._broadcast(client, event)
                elif event is NEED_DATA:
                    break
                elif type(event) is Register:
                    self._on_register(client, event.name)
                elif type(event) is ConnectionClosed:
                    self._drop(client, "closed by peer", level=logging.INFO)
                    return
                elif type(event) is Message:  # next_message gives bytes, but be exhaustive
                    self._broadcast(client, event.payload)
                if client.closed:  # dropped for flooding while relaying (ROBUST-8)
                    return
        except RemoteProtocolError as exc:
            if not data:
                self._drop(client, "closed by peer mid-frame", level=logging.INFO)
            else:
                self._drop(client, f"protocol error: {exc}")
            return
        self._account_input(client, conn, data)

    def _account_input(self, client: Client, conn: Connection, data: bytes) -> None:
        """Count the part of a frame the codec holds against --max-memory; size the next read."""
        held = conn.buffered
        if held != client.in_bytes:
            self.memory_held += held - client.in_bytes
            client.in_bytes = held
            if self.memory_held > self.config.max_memory:
                self._over_budget()
                if client.closed:
                    return
        if len(data) >= RECV_SIZE or client.recv_size > RECV_SIZE:
            # Read the rest of a large frame in one call, not many 64 KiB ones:
            # every read costs a trip round the loop.
            # Never more than --max-memory has room for: the budget stays the bound.
            room = self.config.max_memory - self.memory_held
            client.recv_size = max(RECV_SIZE, min(conn.missing, _MAX_RECV, room))

    def _on_register(self, client: Client, name: str) -> None:
        if self.config.profiles and is_reserved(name):
            self._drop(client, f"username {name!r} is reserved for the server's own frames "
                               "(PROFILE-1)")
            return
        client.name_frame = encode_frame(name.encode())
        client.label = f"{name!r} ({client.addr[0]}:{client.addr[1]})"
        self.registered[client.fd] = client
        del self._unregistered[client.fd]
        # The name is held about four times (codec, frame, log label, repr's
        # escapes): count it, so that JOIN-6-sized names stay within LIMIT-3.
        self.memory_held += 4 * len(client.name_frame)
        log.info("%s joined; %d registered", client.label, len(self.registered))
        if self.replay is not None:
            # Marked, oldest first, before any live relay can be queued for it (HISTORY-1, -2).
            for relay in self.replay:
                self._write(client, relay)

    def _broadcast(self, sender: Client, payload: bytes) -> None:
        if self.dm:
            dm = parse_dm(payload)
            if dm is not None:
                self._direct(sender, payload, dm.recipient)
                return
        # Encode once (one copy of the payload), write the same bytes to every
        # recipient (RELAY-1).  (A gathered sendmsg of name frame and payload,
        # without this join, measured no cheaper at 1 MiB: 1,249 us of server
        # CPU per relay against 1,047-1,305 us, perf stat over 200 relays.)
        # encode_header by name (not inlined): the one-defect test servers that write
        # bad headers replace it; the call costs ~50 ns a message (timeit: 179 against
        # 128 ns), about 0.3% of the ~17 us of server CPU one small relay takes.
        data = b"".join((sender.name_frame, encode_header(len(payload)), payload))
        # What the sender has sent, this message included: ROBUST-8 compares
        # it with what a reader has taken (two stores per message, not per reader).
        sender.received_before = received = sender.received
        sender.received = received + HEADER_LENGTH + len(payload)
        size = len(data)
        # A list (the loop may drop readers: ROBUST-8, LIMIT-3).  Not a dict copy without the
        # sender: at 10,000 clients its 300 KB per relay stayed in the heap, +13 bytes of RSS
        # per idle client (test_memory_per_idle_client); nor list.remove(sender), which
        # compares each Client by __eq__ and cost more than the test per reader.
        readers = list(self.registered.values())
        if not self._inline_write:  # a subclass's _write (a test server's defect), TLS, or a batch
            if self._coalesce and size <= COALESCE_MAX_RELAY:
                self._coalesce_relay(sender, data, received, size, readers)
            else:
                if self._coalesce:  # a large relay in a busy batch: the coalesced ones go first
                    self._flush_pending()
                for client in readers:
                    # ``closed``: a reader may be dropped as this loop runs (ROBUST-8).
                    if client is not sender and not client.closed:
                        self._write(client, data, sender)
        else:
            for client in readers:
                if client is sender:
                    continue
                if client.out:  # behind queued bytes: _write queues it (and charges the sender)
                    self._write(client, data, sender)
                    continue
                # _write's common case, inlined: an empty queue and a socket that takes it all.
                # A reader dropped earlier in this loop has an empty queue and a closed socket
                # (fd -1, never a newcomer's): its send raises EBADF and _drop ignores it, so
                # the commonest case pays no ``closed`` test.
                try:
                    sent = client.sock.send(data)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                except OSError as exc:
                    self._drop(client, f"send failed: {exc.strerror or exc}")  # no-op if closed
                    continue
                if sent != size:
                    self._write_rest(client, data, sent, sender)
        if self.replay is not None:
            self._remember(sender, data)

    def _coalesce_relay(self, sender: Client, data: bytes, received: int, size: int,
                        readers: list[Client]) -> None:
        """Owe ``data`` to each reader with an empty queue until the end of the batch.

        There it goes out together with the reader's other relays (_flush_pending);
        anything else written to the reader before sends these first (_write), so the
        order holds.  ``received``: the sender's received_before for this relay.
        """
        self._batch_relays.append((data, sender, received))
        touched = self._touched
        for client in readers:
            if client is sender:
                continue
            pending = client.pending
            if pending is not None:
                pending.append(data)
            elif client.out:  # behind queued bytes: _write queues it (and charges the sender)
                self._write(client, data, sender)
            elif not client.closed:
                client.pending = [data]
                touched.append(client)
        # Bounded: what waits here is not counted against --max-memory.
        self._batch_entries += len(readers)
        self._batch_bytes += size
        if self._batch_entries > COALESCE_MAX_ENTRIES or self._batch_bytes > COALESCE_MAX_BYTES:
            self._flush_pending()

    def _remember(self, sender: Client, data: bytes) -> None:
        """Keep a public relay for newcomers, marked as history (HISTORY-2)."""
        assert self.replay is not None
        name = sender.name_frame[HEADER_LENGTH:]
        self.replay.add(encode_frame(HISTORY_PREFIX.encode() + name) + data[len(sender.name_frame):])

    def _direct(self, sender: Client, payload: bytes, recipient: bytes) -> None:
        """A private message (DM-1..3): to every other client called ``recipient``, as sent;
        else one notice from SERVER_NAME to the sender.  Never into the history (HISTORY-4)."""
        data = b"".join((sender.name_frame, encode_header(len(payload)), payload))
        sender.received_before = sender.received
        sender.received += HEADER_LENGTH + len(payload)
        wanted = encode_frame(recipient) if recipient else None
        delivered = 0
        for client in list(self.registered.values()):
            if client is not sender and not client.closed and client.name_frame == wanted:
                self._write(client, data, sender)
                delivered += 1
        if not delivered and not sender.closed:
            self._write(sender, encode_frame(SERVER_NAME.encode())
                        + encode_frame(unknown_recipient_notice(recipient)))

    # -- dropping -----------------------------------------------------------------
    def _expire_unregistered(self) -> None:
        """Close connections that never sent a username (JOIN-4).

        ``_unregistered`` is in accept order, so it is oldest first and the
        first one still within its time ends the scan.
        """
        pending = self._unregistered
        if not pending:
            return
        cutoff = time.monotonic() - self.config.register_timeout
        while pending:
            client = next(iter(pending.values()))
            if client.accepted_at >= cutoff:
                return
            self._drop(client, f"no username within {self.config.register_timeout:g} s")

    def _drop(self, client: Client, reason: str, level: int = logging.WARNING) -> None:
        if client.closed:
            return
        client.closed = True
        del self.clients[client.fd]
        self._unregistered.pop(client.fd, None)
        was_registered = self.registered.pop(client.fd, None) is not None
        try:
            self.selector.unregister(client.sock)
        except (KeyError, ValueError):
            pass
        client.sock.close()
        # Free what it holds now: only a small shell stays while other
        # queues still owe its relays (they name it in ``queued_from``).
        self.memory_held -= (client.out_bytes + client.in_bytes + self.connection_cost
                             + 4 * len(client.name_frame))
        client.out.clear()
        client.out_bytes = client.in_bytes = 0
        client.queued_from.clear()
        client.pending = None  # its relays coalesced in this batch: never sent
        client.conn = DEAD_CONNECTION
        if was_registered:
            log.log(level, "%s left: %s; %d registered", client.label, reason, len(self.registered))
        else:
            log.log(level, "%s dropped before registering: %s", client.label, reason)


def select_refusal(fileno: int, watched: int, limit: int, platform: str | None = None) -> str | None:
    """Why select() cannot take one more socket (``fileno``, with ``watched`` already
    registered), or None: on POSIX an fd at or above ``limit``, on Windows a
    ``limit``-th socket."""
    if (platform or sys.platform) == "win32":
        if watched >= limit:
            return f"select() on Windows watches at most {limit} sockets (FD_SETSIZE is {limit})"
        return None
    if fileno >= limit:
        return f"select() cannot watch fd {fileno} (FD_SETSIZE is {limit})"
    return None


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------
#: The soft open-file limit to ask for when the hard limit is "unlimited", as it is on macOS,
#: which refuses more than OPEN_MAX (10240) there and starts shells at 256.
UNLIMITED_FD_TARGET = 10240


def fd_limit_target(soft: int, hard: int, unlimited: int) -> int:
    """The soft RLIMIT_NOFILE to raise to: the hard limit, or OPEN_MAX when that is ``unlimited``."""
    return max(soft, UNLIMITED_FD_TARGET if hard == unlimited else hard)


def raise_fd_limit() -> tuple[int, int]:
    """Raise RLIMIT_NOFILE's soft limit as far as allowed (:func:`fd_limit_target`); return (old, new).

    Windows has no such limit (and no ``resource`` module): (0, 0)."""
    if sys.platform == "win32":
        return 0, 0
    else:  # the checker skips this branch for Windows, where ``resource`` is not imported
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = fd_limit_target(soft, hard, resource.RLIM_INFINITY)
        if target > soft:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            except (ValueError, OSError):  # a system that allows less than OPEN_MAX
                return soft, soft
            return soft, target
        return soft, soft


#: glibc's mallopt() parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # the largest value glibc accepts on 64-bit


def keep_freed_buffers(max_payload: int) -> bool:
    """Let glibc reuse the memory of large relays instead of returning it after each one.

    By default glibc serves a block of 128 KiB or more with a fresh mmap() and
    unmaps it on free() (its threshold adapts, but depends on the order of
    allocations), and gives memory at the top of the heap back once it holds
    twice that much free.  A 1 MiB relay allocates a payload and an encoded
    relay, so a relay may touch about 2 MiB of fresh pages, each one a page
    fault.  Measured with ``perf stat`` on 200 relays of 1 MiB while that
    happened (468-490 faults per relay): server CPU per relay 1,046-1,065 us,
    and 509-582 us with 7-10 faults once both thresholds sit above the
    largest frame (naive baseline at the time: 870 us, 241 faults).  At other
    moments the same server faulted 5-10 times per relay without this: then it
    changes nothing.  It makes the cheap case the only one.  The cost: up to
    twice the largest frame of freed memory stays with the process.  Linux
    with glibc only; elsewhere (or if mallopt is missing) nothing changes and
    False is returned.
    """
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    threshold = min(2 * max_payload + 64 * 1024, _MMAP_THRESHOLD_MAX)
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, 2 * threshold))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="chat-server", description=__doc__.split("\n")[0])
    add_version_argument(p)
    p.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default %(default)s)")
    p.add_argument("--port", type=port_number, default=DEFAULT_PORT,
                   help="port to bind; 0 picks a free one (default %(default)s)")
    p.add_argument("--max-payload", type=positive_int, default=DEFAULT_MAX_PAYLOAD,
                   help="largest accepted frame payload in bytes (default %(default)s)")
    p.add_argument("--max-clients", type=positive_int, default=ServerConfig.max_clients,
                   help="refuse connections beyond this many (default %(default)s)")
    p.add_argument("--max-backlog", type=positive_int, default=ServerConfig.max_backlog,
                   help="drop a client whose unsent output exceeds this many bytes "
                        "(default %(default)s)")
    p.add_argument("--max-username", type=positive_int, default=ServerConfig.max_username,
                   help="close a client whose username is longer than this many bytes, "
                        "from its header alone (JOIN-6; default %(default)s)")
    p.add_argument("--max-memory", type=positive_int, default=ServerConfig.max_memory,
                   help="server-wide budget in bytes for buffered data plus "
                        f"{CLIENT_OVERHEAD} bytes per connection ({CLIENT_OVERHEAD + TLS_OVERHEAD} "
                        "over TLS); past 3/4 of it new "
                        "connections are refused, past it the biggest holder is dropped "
                        "(LIMIT-3; default %(default)s)")
    p.add_argument("--register-timeout", type=float, default=ServerConfig.register_timeout,
                   help="close connections that send no username within this many seconds "
                        "(default %(default)s)")
    p.add_argument("--selector", choices=[k for k, v in SELECTORS.items() if v is not None],
                   default="auto", help="I/O multiplexer (default: the best available)")
    tls = p.add_argument_group("TLS (PROTOCOL.md, Profile: tls)")
    tls.add_argument("--tls-cert", metavar="FILE", default=None,
                     help="serve TLS with this PEM certificate (chain)")
    tls.add_argument("--tls-key", metavar="FILE", default=None,
                     help="the certificate's PEM private key (if not in --tls-cert)")
    tls.add_argument("--tls-self-signed", metavar="DIR", nargs="?", const="", default=None,
                     help="serve TLS with a throwaway CA and certificate for 127.0.0.1/localhost "
                          "(needs trustme: the 'tls' extra); written to DIR and kept, or to a "
                          "temporary folder removed at exit; the CA file's path is printed "
                          "for clients' --tls-ca")
    tls.add_argument("--tls-name", metavar="HOST", action="append", default=[],
                     help="with --tls-self-signed: another host name or IP the certificate "
                          "covers (the classroom machine's address); repeatable")
    p.add_argument("--profile", default=None, metavar="NAMES",
                   help="serve these optional profiles of PROTOCOL.md section 8, separated by "
                        f"commas: {', '.join(PROFILES)} (default: none, the base protocol)")
    p.add_argument("--history-size", type=history_size, default=ServerConfig.history_size,
                   metavar="N", help="with --profile history: replay at most the last N public "
                                     f"messages to a newcomer, {MIN_HISTORY_MESSAGES}.."
                                     f"{MAX_HISTORY_MESSAGES} (HISTORY-3; default %(default)s)")
    p.add_argument("--log-level", default="INFO",
                   choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
                   type=str.upper, help="log verbosity on stderr (default %(default)s)")
    return p


def main(argv: Sequence[str] | None = None, server_class: type[ChatServer] = ChatServer) -> int:
    """The ``chat-server`` command; ``server_class`` lets test servers reuse this CLI."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.tls_self_signed is not None and args.tls_cert:
        parser.error("give --tls-cert or --tls-self-signed, not both")
    if args.tls_key and not args.tls_cert:
        parser.error("--tls-key needs --tls-cert")
    if args.tls_name and args.tls_self_signed is None:
        parser.error("--tls-name goes with --tls-self-signed")
    try:
        profiles = parse_profiles(args.profile) if args.profile is not None else frozenset()
    except ValueError as exc:  # one line, like a port already in use
        print(f"chat-server: {exc}", file=sys.stderr)
        return exit_codes.USAGE
    made = None
    tls_context = None
    try:
        if args.tls_self_signed is not None:
            made = self_signed(args.tls_self_signed or None, tuple(args.tls_name))
            tls_context = server_context(str(made.cert), str(made.key))
        elif args.tls_cert:
            tls_context = server_context(args.tls_cert, args.tls_key)
    except TLSSetupError as exc:
        print(f"chat-server: {exc}", file=sys.stderr)
        return exit_codes.USAGE
    try:
        return _serve(args, server_class, profiles, tls_context, str(made.ca) if made else None)
    finally:
        if made is not None:
            made.remove()


def _serve(args: argparse.Namespace, server_class: type[ChatServer], profiles: frozenset[str],
           tls_context: ssl.SSLContext | None, ca_file: str | None) -> int:
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = ServerConfig(host=args.host, port=args.port, max_payload=args.max_payload,
                          max_clients=args.max_clients, max_backlog=args.max_backlog,
                          max_username=args.max_username, max_memory=args.max_memory,
                          register_timeout=args.register_timeout, selector=args.selector,
                          profiles=profiles, history_size=args.history_size,
                          tls=tls_context)
    old, new = raise_fd_limit()
    if new != old:
        log.debug("raised the open-file limit from %d to %d", old, new)
    if keep_freed_buffers(config.max_payload):
        log.debug("malloc keeps freed buffers of up to twice --max-payload for reuse")
    try:
        server = server_class(config)
    except OSError as exc:
        # On Windows errno is a WSAE* code that os.strerror() calls "Unknown error": use the text
        posix_errno = exc.errno if sys.platform != "win32" else None
        reason = os.strerror(posix_errno) if posix_errno else (exc.strerror or str(exc))
        print(f"chat-server: cannot listen on {config.host}:{config.port}: {reason}", file=sys.stderr)
        return exit_codes.TARGET_UNAVAILABLE  # the server is the target, and it would not start
    except ValueError as exc:
        print(f"chat-server: {exc}", file=sys.stderr)
        return exit_codes.USAGE

    server.install_signal_handlers()
    host, port = server.address
    scheme = "tls://" if tls_context is not None else ""
    lines = [f"chat-server listening on {scheme}{host}:{port}"]
    if ca_file:
        lines.append(f"{CA_LINE_PREFIX}{ca_file}")
    print("\n".join(lines), flush=True)  # one write: a harness reading the address sees both
    log.info("listening on %s%s:%d with %s%s", scheme, host, port, type(server.selector).__name__,
             f"; profiles: {', '.join(sorted(config.profiles))}" if config.profiles else "")
    server.serve_forever()
    return exit_codes.OK  # a server told to stop (SIGINT, SIGTERM) has found nothing


if __name__ == "__main__":
    sys.exit(main())
