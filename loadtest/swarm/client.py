"""A chat client for locust swarms that reports every step as a locust request.

This module does not import locust or gevent: it uses plain sockets (through
``reference.client.ChatClient`` and the shared codec), which ``import locust``
turns cooperative by monkey-patching, so the same code runs under locust and
in plain pytest.  It reports through a small :class:`Reporter` interface; the
locust side (``loadtest.swarm.users``) turns that into request events.

What it reports (request type ``chat``):

* ``connect``, ``register``, ``send``: time of the socket call, in ms;
* ``broadcast``: one event per message received, with the one-way latency from
  the send time carried in the payload (``reference.stamp``), in ms, as locust
  shows it; the same latency in µs goes to the reporter's chat statistics
  (``loadtest.swarm.chat``: an HDR histogram, shown in the web UI's chat tab),
  because locust rounds response times below 100 ms to whole milliseconds;
* failures: a server that closes on us, and every lost, duplicated, reordered,
  echoed, mislabelled or unpaired message (RELAY-2/3/4), checked by
  ``reference.sequence``.

Each read takes whatever the socket holds and times every relay in it at the
moment the bytes arrived, so a relay is never charged for the time spent on
the ones before it in the same read.

Latency needs the sender's and the receiver's clocks to be one clock:
``time.monotonic_ns()`` is per boot, so every username starts with this boot's
clock domain, and a message from another domain (another machine) is counted
under ``broadcast from another machine (no latency)`` without a latency.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Protocol

from reference import client as reference_client
from reference.protocol import DEFAULT_HOST, DEFAULT_PORT, ConnectionClosed, ProtocolError, Relay
from reference.sequence import RelayChecker, SequenceFailure
from reference.stamp import make_payload, receive_limit
from reference.target import parse_server
from reference.tls import ClientTLS

__all__ = [
    "BROADCAST",
    "OTHER_CLOCK",
    "REQUEST_TYPE",
    "UNSTAMPED",
    "ChatClient",
    "DisconnectedError",
    "Reporter",
    "clock_domain",
    "target_address",
    "target_tls",
]

REQUEST_TYPE = "chat"
BROADCAST = "broadcast"
OTHER_CLOCK = "broadcast from another machine (no latency)"
UNSTAMPED = "broadcast not from this swarm (no latency)"
#: Swarm usernames: clock domain, "-", sender id (the id the stamps carry).
_NAMES = r"[0-9A-Za-z]+-(\d+)"
_RECEIVE_POLL_S = 1.0


class Reporter(Protocol):
    """Where a client sends its measurements (locust's request event in a swarm)."""

    def request(self, name: str, response_time_ms: float | None, length: int,
                exception: Exception | None = None) -> None: ...

    def delivered(self, latency_ns: int | None) -> None: ...

    def failed(self, kind: SequenceFailure) -> None: ...


class DisconnectedError(ConnectionError):
    """The server closed or reset a connection we did not close."""


def clock_domain() -> str:
    """A tag shared by exactly the processes whose ``monotonic_ns`` clocks agree.

    On Linux CLOCK_MONOTONIC is one clock per boot, so the boot id names it.
    Elsewhere we cannot tell, so each process is its own domain and only
    messages between its own users get a latency.
    """
    try:
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        return boot_id.replace("-", "")[:8]
    except OSError:
        return f"p{random.getrandbits(28):07x}"


_CLOCK_DOMAIN = clock_domain()


def target_address(host: str | None) -> tuple[str, int]:
    """locust's ``--host`` (``H:P``, ``tcp://H:P`` or ``tls://H:P``) as an address; default 127.0.0.1:1234."""
    if not host:
        return DEFAULT_HOST, DEFAULT_PORT
    return parse_server(host)[0]


def target_tls(host: str | None, ca: str | None = None, insecure: bool = False) -> ClientTLS | None:
    """How to reach a ``tls://`` host (verified against ``ca``, or not at all), or None."""
    if not host or not parse_server(host)[1]:
        return None
    return ClientTLS(ca=ca, insecure=insecure)


class ChatClient:
    """One swarm connection: connect, register, send stamped messages, check what arrives.

    Sending and receiving may run in two greenlets at once (a chatter's task
    and its reader): a gevent socket waits for reads and writes apart, and
    the codec's receive and send sides keep separate state.  Both set the
    socket's timeout before they wait, so a wait may use the other's bound;
    every one is still bounded.
    """

    def __init__(self, address: tuple[str, int], reporter: Reporter, *, size: int = 64,
                 timeout: float = 10.0, loss_grace: float = 2.0,
                 broadcast_name: str = BROADCAST, record_latency: bool = True,
                 tls: ClientTLS | None = None) -> None:
        self.address = address
        self.tls = tls
        self.reporter = reporter
        self.size = size
        self.timeout = timeout
        self.broadcast_name = broadcast_name
        #: False for slow readers: their latency is the queue they build, not the server's.
        self.record_latency = record_latency
        #: Random, so that users of many workers and machines never share a name.
        self.sender_id = random.randrange(1, 2**31)
        self.name = f"{_CLOCK_DOMAIN}-{self.sender_id}"
        self.sent = 0
        self.received = 0
        self.checker = RelayChecker(_NAMES, own=self.sender_id, loss_grace_ns=int(loss_grace * 1e9))
        self._chat: reference_client.ChatClient | None = None
        self._closing = False

    @property
    def connected(self) -> bool:
        return self._chat is not None and not self._chat.closed

    # -- connecting ---------------------------------------------------------
    def connect(self) -> bool:
        """Connect and register; report both. False (after reporting why) on failure."""
        start = time.perf_counter()
        try:
            self._chat = reference_client.ChatClient.connect(*self.address, timeout=self.timeout,
                                                             max_payload=receive_limit(self.size),
                                                             tls=self.tls)
        except OSError as exc:
            self._report_elapsed("connect", start, 0, exc)
            return False
        self._report_elapsed("connect", start, 0)
        start = time.perf_counter()
        try:
            self._chat.register(self.name)
        except OSError as exc:
            self._report_elapsed("register", start, 0, exc)
            self._drop()
            return False
        self._report_elapsed("register", start, len(self.name))
        return True

    def close(self) -> None:
        """Close on purpose (FIN); what has not arrived yet is not counted as lost."""
        self._closing = True
        self._drop()

    def _drop(self) -> None:
        if self._chat is not None:
            self._chat.close()

    # -- sending ------------------------------------------------------------
    def send_message(self) -> None:
        """Send the next stamped message and report how long the send took."""
        chat = self._chat
        if chat is None or chat.closed:
            return
        text = make_payload(self.sender_id, self.sent, time.monotonic_ns(), self.size)
        start = time.perf_counter()
        try:
            chat.send(text)
        except OSError as exc:
            self._report_elapsed("send", start, 0, exc)
            self._lost_connection(exc)
            return
        self.sent += 1
        self._report_elapsed("send", start, len(text))

    # -- receiving ----------------------------------------------------------
    def receive_one(self, timeout: float = _RECEIVE_POLL_S) -> bool:
        """Wait up to ``timeout`` s for a read; report every relay it completed. False if none came."""
        chat = self._chat
        if chat is None or chat.closed:
            return False
        try:
            first = chat.receive(timeout)
        except TimeoutError:
            self._report_lost(self.checker.overdue(time.monotonic_ns()))
            return False
        except (OSError, ProtocolError) as exc:
            # ServerClosedError is an OSError; a codec error means garbage on the wire.
            self._lost_connection(exc)
            return False
        now = time.monotonic_ns()  # the read that completed ``first`` completed the rest too
        batch, closed = [first], False
        try:
            while True:
                event = chat.conn.next_event()
                if isinstance(event, Relay):
                    batch.append(event)
                    continue
                closed = isinstance(event, ConnectionClosed)
                break
        except ProtocolError as exc:
            for relay in batch:
                self.on_relay(relay, now)
            self._lost_connection(exc)
            return True
        # Let the other readers this wake-up made ready take their reads and times first
        # (under gevent, time.sleep(0) yields to the hub): otherwise every reader after
        # this one is timed late by this one's checks and reports, and the swarm measures
        # its own queue of readers instead of the server.  Outside gevent it returns at once.
        time.sleep(0)
        for relay in batch:
            self.on_relay(relay, now)
        if closed:
            self._lost_connection(reference_client.ServerClosedError("server closed the connection"))
        return True

    def on_relay(self, relay: Relay, now_ns: int) -> None:
        """Check one received message and report it as one ``broadcast`` event."""
        self.received += 1
        length = len(relay.text)
        before = self.checker.delivered
        stamp, failures = self.checker.check(relay.sender, relay.text, now_ns)
        delivered = self.checker.delivered - before
        reporter = self.reporter
        if stamp is None:
            reporter.request(UNSTAMPED, None, length)
        elif failures:
            for failure in failures:
                reporter.request(self.broadcast_name, None, length, failure.error())
                reporter.failed(failure)
        elif relay.sender.partition("-")[0] != _CLOCK_DOMAIN:
            reporter.request(OTHER_CLOCK, None, length)
        else:
            latency_ns = now_ns - stamp.sent_ns
            reporter.request(self.broadcast_name, latency_ns / 1e6, length)
            if self.record_latency:
                reporter.delivered(latency_ns)
                delivered -= 1
        for _ in range(delivered):
            reporter.delivered(None)
        self._report_lost(self.checker.overdue(now_ns))

    def finish(self) -> None:
        """At the end of a connection: messages still missing are lost."""
        self._report_lost(self.checker.flush())

    # -- helpers --------------------------------------------------------------
    def _lost_connection(self, exc: BaseException) -> None:
        """The server closed or reset us (or sent garbage): one failure, then reconnect later."""
        if self._closing:
            return
        self._drop()
        self.finish()
        self.reporter.request("disconnect", None, 0, DisconnectedError(
            f"the server closed the connection ({type(exc).__name__})"))

    def _report_lost(self, count: int) -> None:
        for _ in range(count):
            self.reporter.request(self.broadcast_name, None, 0, SequenceFailure.LOST.error())
            self.reporter.failed(SequenceFailure.LOST)

    def _report_elapsed(self, name: str, start: float, length: int,
                        exception: Exception | None = None) -> None:
        self.reporter.request(name, (time.perf_counter() - start) * 1000.0, length, exception)
