"""The reference chat server: select-style, single-threaded, robust.

Same protocol and the same shape as the classic tutorial server (one loop
around ``select``), with the fixes that PROTOCOL.md's ROBUST rules demand:

* sockets are non-blocking and every connection has its own input buffer
  (the codec), so a header split across packets or a client that says
  nothing never blocks the loop (ROBUST-1, ROBUST-2);
* every connection has its own output buffer: we write directly when the
  socket takes it, keep only the remainder, and drop a client whose backlog
  passes ``max_backlog`` (ROBUST-3);
* a peer's protocol error drops that peer only (ROBUST-4);
* with ``--selector select`` we refuse connections whose fd select() cannot
  watch instead of crashing at FD_SETSIZE, and on EMFILE we shed the new
  connection instead of spinning (LIMIT-1, LIMIT-2).

Run it as ``chat-server`` or ``python -m reference.server``.  Its first line
on stdout names the address it listens on, so a harness can read the port.
"""

from __future__ import annotations

import argparse
import collections
import errno
import logging
import os
import selectors
import signal
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from reference.cli_args import port_number, positive_int
from reference.protocol import (
    DEFAULT_HOST,
    DEFAULT_MAX_PAYLOAD,
    DEFAULT_PORT,
    Connection,
    ConnectionClosed,
    Message,
    Register,
    RemoteProtocolError,
    Role,
    encode_frame,
    encode_header,
)
from reference.version import add_version_argument

if sys.platform != "win32":  # no RLIMIT_NOFILE on Windows: see raise_fd_limit
    import resource

log = logging.getLogger("chat-server")

#: POSIX select() cannot watch file descriptors at or above this number; Windows'
#: select() takes any socket handle but at most this many sockets in all.
FD_SETSIZE = 512 if sys.platform == "win32" else 1024
_RECV_SIZE = 64 * 1024  # below glibc's mmap threshold: a larger recv() costs an mmap+munmap per call
_ACCEPTS_PER_WAKEUP = 256
_WAKEUP = object()  # selector data of the self-pipe
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
    register_timeout: float = 60.0
    selector: str = "auto"
    backlog: int = 4096


class Client:
    """One accepted connection: its socket, codec and output queue."""

    __slots__ = ("addr", "conn", "fd", "label", "name_frame", "out", "out_bytes", "sock",
                 "accepted_at", "writing")

    def __init__(self, sock: socket.socket, addr: tuple[str, int], max_payload: int, now: float):
        self.sock = sock
        self.fd = sock.fileno()
        self.addr = addr
        self.conn = Connection(Role.SERVER, max_payload=max_payload)
        self.name_frame = b""          # the encoded username frame, once registered
        self.out: collections.deque[memoryview] = collections.deque()
        self.out_bytes = 0             # total bytes waiting in ``out``
        self.accepted_at = now
        self.writing = False           # registered for EVENT_WRITE
        self.label = f"{addr[0]}:{addr[1]}"


class ChatServer:
    """The event loop.  ``serve_forever`` runs until ``stop`` or a signal."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
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
        self._pending_registration: collections.deque[Client] = collections.deque()
        self._running = False
        # Self-pipe: a signal handler only clears ``_running``; the byte that
        # signal.set_wakeup_fd writes here wakes select() so we notice at once.
        self._wakeup_r, self._wakeup_w = socket.socketpair()
        self._wakeup_r.setblocking(False)
        self._wakeup_w.setblocking(False)
        self.selector.register(self._wakeup_r, selectors.EVENT_READ, _WAKEUP)
        # A spare fd so that on EMFILE we can still accept-and-close (shedding
        # the connection) instead of leaving the listener readable forever.
        self._spare_fd: int | None = os.open(os.devnull, os.O_RDONLY)

    # -- main loop ----------------------------------------------------------
    def serve_forever(self) -> None:
        self._running = True
        select = self.selector.select
        try:
            while self._running:
                for key, mask in select(1.0):
                    client = key.data
                    if client is None:
                        self._accept()
                        continue
                    if client is _WAKEUP:
                        self._drain_wakeup()
                        continue
                    if mask & selectors.EVENT_READ:
                        self._on_readable(client)
                    if mask & selectors.EVENT_WRITE and client.fd in self.clients:
                        self._flush(client)
                self._expire_unregistered()
        finally:
            log.info("shutting down")
            self.close()

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
        except (KeyError, ValueError):
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
                if exc.errno in (errno.ECONNABORTED, errno.ECONNRESET, errno.EPROTO):
                    continue
                raise
            reason = self._refusal_reason(sock)
            if reason:
                log.warning("refused %s:%s: %s", addr[0], addr[1], reason)
                sock.close()
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client = Client(sock, addr, self.config.max_payload, time.monotonic())
            self.clients[client.fd] = client
            self._pending_registration.append(client)
            self.selector.register(sock, selectors.EVENT_READ, client)
            log.debug("connection from %s", client.label)

    def _refusal_reason(self, sock: socket.socket) -> str | None:
        if len(self.clients) >= self.config.max_clients:
            return f"--max-clients {self.config.max_clients} reached"
        if self.fd_limit is not None:
            return select_refusal(sock.fileno(), len(self.selector.get_map()), self.fd_limit)
        return None

    def _shed_one(self, exc: OSError) -> None:
        """Out of file descriptors: free the spare, accept and close one, retake it."""
        log.warning("out of file descriptors (%s): refusing a connection", exc.strerror)
        if self._spare_fd is None:
            return
        os.close(self._spare_fd)
        try:
            sock, _ = self.listener.accept()
            sock.close()
        except OSError:
            pass
        finally:
            self._spare_fd = os.open(os.devnull, os.O_RDONLY)

    # -- reading ----------------------------------------------------------------
    def _on_readable(self, client: Client) -> None:
        try:
            data = client.sock.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # ECONNRESET and friends
            self._drop(client, f"connection error: {exc.strerror or exc}")
            return
        conn = client.conn
        conn.receive_data(data)
        try:
            while True:
                event = conn.next_event()
                if type(event) is Message:
                    self._broadcast(client, event.payload)
                elif type(event) is Register:
                    self._on_register(client, event.name)
                elif type(event) is ConnectionClosed:
                    self._drop(client, "closed by peer", level=logging.INFO)
                    return
                else:  # NEED_DATA
                    return
                if client.fd not in self.clients:  # dropped while broadcasting
                    return
        except RemoteProtocolError as exc:
            if not data:
                self._drop(client, "closed by peer mid-frame", level=logging.INFO)
            else:
                self._drop(client, f"protocol error: {exc}")

    def _on_register(self, client: Client, name: str) -> None:
        client.name_frame = encode_frame(name.encode())
        client.label = f"{name!r} ({client.addr[0]}:{client.addr[1]})"
        self.registered[client.fd] = client
        log.info("%s joined; %d registered", client.label, len(self.registered))

    def _broadcast(self, sender: Client, payload: bytes) -> None:
        # Encode once (one copy of the payload), write the same bytes to every
        # recipient (RELAY-1).
        data = b"".join((sender.name_frame, encode_header(len(payload)), payload))
        sender_fd = sender.fd
        for fd, client in list(self.registered.items()):
            if fd != sender_fd:
                self._write(client, data)

    # -- writing ----------------------------------------------------------------
    def _write(self, client: Client, data: bytes) -> None:
        if not client.out:
            try:
                sent = client.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._drop(client, f"send failed: {exc.strerror or exc}")
                return
            if sent == len(data):
                return
            data = memoryview(data)[sent:]  # type: ignore[assignment]
        if client.out_bytes + len(data) > self.config.max_backlog:
            self._drop(client, f"not reading: output backlog would exceed {self.config.max_backlog} bytes")
            return
        client.out.append(memoryview(data))
        client.out_bytes += len(data)
        if not client.writing:
            client.writing = True
            self.selector.modify(client.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, client)

    def _flush(self, client: Client) -> None:
        out = client.out
        while out:
            chunk = out[0]
            try:
                sent = client.sock.send(chunk)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._drop(client, f"send failed: {exc.strerror or exc}")
                return
            client.out_bytes -= sent
            if sent < len(chunk):
                out[0] = chunk[sent:]
                return
            out.popleft()
        client.writing = False
        self.selector.modify(client.sock, selectors.EVENT_READ, client)

    # -- dropping -----------------------------------------------------------------
    def _expire_unregistered(self) -> None:
        """Close connections that never sent a username (JOIN-4).

        ``_pending_registration`` is in accept order, so it is oldest first:
        settled entries (registered or already gone) are discarded from the
        front, and the first one still waiting within its time ends the scan.
        """
        pending = self._pending_registration
        cutoff = time.monotonic() - self.config.register_timeout
        while pending:
            client = pending[0]
            waiting = self.clients.get(client.fd) is client and not client.conn.registered
            if waiting and client.accepted_at >= cutoff:
                return
            pending.popleft()
            if waiting:
                self._drop(client, f"no username within {self.config.register_timeout:g} s")

    def _drop(self, client: Client, reason: str, level: int = logging.WARNING) -> None:
        if self.clients.get(client.fd) is not client:
            return
        del self.clients[client.fd]
        was_registered = self.registered.pop(client.fd, None) is not None
        try:
            self.selector.unregister(client.sock)
        except (KeyError, ValueError):
            pass
        client.sock.close()
        client.out.clear()
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
    p.add_argument("--register-timeout", type=float, default=ServerConfig.register_timeout,
                   help="close connections that send no username within this many seconds "
                        "(default %(default)s)")
    p.add_argument("--selector", choices=[k for k, v in SELECTORS.items() if v is not None],
                   default="auto", help="I/O multiplexer (default: the best available)")
    p.add_argument("--log-level", default="INFO",
                   choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
                   type=str.upper, help="log verbosity on stderr (default %(default)s)")
    return p


def main(argv: Sequence[str] | None = None, server_class: type[ChatServer] = ChatServer) -> int:
    """The ``chat-server`` command; ``server_class`` lets test servers reuse this CLI."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = ServerConfig(host=args.host, port=args.port, max_payload=args.max_payload,
                          max_clients=args.max_clients, max_backlog=args.max_backlog,
                          register_timeout=args.register_timeout, selector=args.selector)
    old, new = raise_fd_limit()
    if new != old:
        log.debug("raised the open-file limit from %d to %d", old, new)
    try:
        server = server_class(config)
    except OSError as exc:
        # On Windows errno is a WSAE* code that os.strerror() calls "Unknown error": use the text
        posix_errno = exc.errno if sys.platform != "win32" else None
        reason = os.strerror(posix_errno) if posix_errno else (exc.strerror or str(exc))
        print(f"chat-server: cannot listen on {config.host}:{config.port}: {reason}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"chat-server: {exc}", file=sys.stderr)
        return 2

    server.install_signal_handlers()
    host, port = server.address
    print(f"chat-server listening on {host}:{port}", flush=True)
    log.info("listening on %s:%d with %s", host, port, type(server.selector).__name__)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
