"""The network side of the classroom Tk client: one connection, two threads, one queue.

A :class:`ChatSession` owns one :class:`~reference.client.ChatClient` (the shared
codec, no framing of its own) and talks to the GUI only through a
``queue.Queue`` of small frozen events.  Its threads never touch a widget --
Tk is not thread-safe -- so the Tk loop drains the queue with ``after()``:

* the *reader* thread connects, registers, then loops on ``receive()`` and posts
  :class:`Connected`, :class:`Received`, and finally :class:`Disconnected` with
  the reason in plain words;
* the *writer* thread takes lines from an outbox and sends them, so a server
  that stops reading can never freeze the window in ``sendall()``.

Every event carries the session's ``generation`` so that, after a reconnect, a
late event from the old connection is recognised and ignored by the model.
"""

from __future__ import annotations

import queue
import socket
import ssl
import threading
from dataclasses import dataclass
from datetime import datetime

from reference.client import ChatClient, ServerClosedError
from reference.protocol import ProtocolError
from reference.tls import ClientTLS, describe_ssl_error

__all__ = [
    "ConnectParams",
    "Connected",
    "ChatSession",
    "Disconnected",
    "Received",
    "SessionEvent",
]

#: How long one blocking receive or outbox wait lasts before the stop flag is looked at
#: again.  Shutdown does not depend on it (close() shuts the socket down, which wakes
#: recv at once); it only bounds every wait, as the house rules ask.
_POLL_SECONDS = 1.0
_JOIN_SECONDS = 3.0


@dataclass(frozen=True)
class ConnectParams:
    """Where to connect and as whom: the connect dialog's or the command line's answer."""

    host: str
    port: int
    name: str
    tls: ClientTLS | None = None  # connect over TLS, verified as this says

    @property
    def address(self) -> str:
        return f"{'tls://' if self.tls is not None else ''}{self.host}:{self.port}"


@dataclass(frozen=True)
class Connected:
    generation: int
    params: ConnectParams


@dataclass(frozen=True)
class Received:
    generation: int
    sender: str
    text: str
    at: datetime


@dataclass(frozen=True)
class Disconnected:
    """The connection ended (or never started); ``reason`` is for the status bar."""

    generation: int
    reason: str
    by_user: bool = False


SessionEvent = Connected | Received | Disconnected


def describe_error(exc: BaseException) -> str:
    """A short, human reason for a failed or broken connection."""
    if isinstance(exc, ServerClosedError):
        return str(exc)
    if isinstance(exc, ProtocolError):
        return f"the server sent bytes that break the protocol: {exc}"
    if isinstance(exc, ssl.SSLError):  # a certificate that does not verify, plaintext server...
        return describe_ssl_error(exc)
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, UnicodeError):
        return "invalid host name (a part of it is empty or longer than 63 characters)"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower() if exc.strerror[:1].isupper() else exc.strerror
    return str(exc) or type(exc).__name__


class ChatSession:
    """One connection to a chat server, run by two daemon threads.

    ``send`` and ``close`` are the only methods the GUI thread calls; both return
    at once.  Exactly one :class:`Disconnected` is posted per session, last.
    """

    def __init__(self, params: ConnectParams, events: queue.Queue[SessionEvent], generation: int,
                 *, connect_timeout: float = 5.0) -> None:
        self.params = params
        self.generation = generation
        self.connect_timeout = connect_timeout
        self._events = events
        self._outbox: queue.Queue[str | None] = queue.Queue()
        self._stop = threading.Event()
        self._closed_by_user = False
        self._client: ChatClient | None = None
        self._client_lock = threading.Lock()
        self._ended = False  # Disconnected has been posted (by the reader or the writer)
        self._end_lock = threading.Lock()
        self._reader = threading.Thread(target=self._read_loop, daemon=True,
                                        name=f"chat-reader-{generation}")
        self._writer = threading.Thread(target=self._write_loop, daemon=True,
                                        name=f"chat-writer-{generation}")

    # -- called from the GUI thread ------------------------------------------
    def start(self) -> None:
        self._reader.start()

    def send(self, text: str) -> None:
        """Queue one chat line for the writer thread."""
        self._outbox.put(text)

    def close(self) -> None:
        """Hang up; the reader posts ``Disconnected(by_user=True)`` unless one was posted."""
        self._closed_by_user = True
        self._stop.set()
        self._outbox.put(None)
        self._shutdown_socket()

    def _shutdown_socket(self) -> None:
        with self._client_lock:
            client = self._client
        if client is not None:
            try:
                # shutdown, unlike close, wakes a recv() blocked in the reader thread.
                client.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def join(self, timeout: float = _JOIN_SECONDS) -> bool:
        """Wait for both threads to end; True when they did."""
        for thread in (self._reader, self._writer):
            if thread.is_alive():
                thread.join(timeout)
        return not (self._reader.is_alive() or self._writer.is_alive())

    # -- threads ----------------------------------------------------------------
    def _post_end(self, reason: str) -> None:
        with self._end_lock:
            if self._ended:
                return
            self._ended = True
            by_user = self._stop.is_set() and self._closed_by_user
        self._events.put(Disconnected(self.generation, "you disconnected" if by_user else reason,
                                      by_user=by_user))

    def _read_loop(self) -> None:
        params = self.params
        try:
            client = ChatClient.connect(params.host, params.port, name=params.name,
                                        timeout=self.connect_timeout, tls=params.tls)
        except (OSError, ProtocolError, UnicodeError) as exc:
            # UnicodeError: socket's IDNA encoding refuses a host name with a label of more
            # than 63 characters before any lookup; it is a bad address like any other.
            self._post_end(f"cannot connect to {params.address}: {describe_error(exc)}")
            return
        with self._client_lock:
            self._client = client
        if self._stop.is_set():  # closed while we were connecting
            client.close()
            self._post_end("you disconnected")
            return
        self._events.put(Connected(self.generation, params))
        self._writer.start()
        reason = "connection closed"
        try:
            while not self._stop.is_set():
                try:
                    relay = client.receive(timeout=_POLL_SECONDS)
                except TimeoutError:
                    continue
                self._events.put(Received(self.generation, relay.sender, relay.text, datetime.now()))
        except (OSError, ProtocolError) as exc:
            reason = describe_error(exc)
        finally:
            self._stop.set()
            self._outbox.put(None)  # wake the writer so it ends too
            client.close()
            self._post_end(reason)

    def _write_loop(self) -> None:
        client = self._client
        assert client is not None
        while not self._stop.is_set():
            try:
                text = self._outbox.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                continue
            if text is None:
                break
            try:
                # Both threads set the one socket's timeout (ChatClient does, per call); the
                # worst a race can do is shorten this send's wait to the reader's poll, and a
                # server that takes no bytes for that long is treated as gone.
                client.send(text)
            except (OSError, ProtocolError) as exc:
                # Post the reason now; the reader will find the socket dead as well.
                self._post_end(f"sending failed: {describe_error(exc)}")
                self._stop.set()
                self._shutdown_socket()
                break
