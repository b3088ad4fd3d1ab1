"""The hostile room: honest observers read a numbered stream while attackers do their worst.

Every attack of issue 14 at once, against a real ``chat-server`` with its
default limits, for a bounded time (ATTACK_SECONDS): slowloris, garbage,
resets, invalid UTF-8, join/leave cycles, over-long usernames (1 MiB, then a
hundred zero-length messages: the issue's amplification), zero-length floods
under a 256-byte name, half-sent 4 MiB frames, silent
connections and a client that never reads.  Asserted: each observer gets the
honest sender's numbered messages exactly once and in order, no observer is
dropped, the server stays up, and its open file descriptors and memory come
back to their baseline once the attackers are gone.

Long (about 30 s), so outside the default run: ``tox -e hostile``, or
``pytest tests/reference/test_hostile_room.py -m hostile -s`` for the figures
(docs/server.md, "Hostile clients").
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from reference.client import ChatClient, abort_socket, join_room
from reference.protocol import ProtocolError, encode_frame, encode_header
from reference.target import SpawnedServer, reference_command

pytestmark = [pytest.mark.slow, pytest.mark.hostile, pytest.mark.timeout(180)]

ATTACK_SECONDS = 15.0
OBSERVERS = 3
MESSAGES = 1500          # the honest stream, spread over the attack
WAIT = 30.0


@pytest.fixture(autouse=True)
def only_when_asked(request: pytest.FixtureRequest) -> None:
    """Outside the default run: it takes half a minute of both cores."""
    if "hostile" not in (request.config.option.markexpr or ""):
        pytest.skip("the hostile room runs with -m hostile (tox -e hostile)")


@pytest.fixture
def server() -> Iterator[SpawnedServer]:
    handle = SpawnedServer(reference_command("--register-timeout", "2", "--log-level", "WARNING"))
    handle.start()
    yield handle
    handle.stop()


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def attack_loop(stop: threading.Event, counts: Counter[str], name: str,
                attack: Callable[[], None]) -> None:
    """Run ``attack`` until ``stop``; a refused or reset attack is part of the game."""
    while not stop.is_set():
        try:
            attack()
            counts[name] += 1
        except OSError:
            counts[name + " (refused)"] += 1


def make_attacks(address: tuple[str, int], stop: threading.Event) -> dict[str, Callable[[], None]]:
    rng = random.Random(14)

    def connect() -> socket.socket:
        return socket.create_connection(address, timeout=5)

    def slowloris() -> None:  # half a frame, one byte at a time, then gone
        with connect() as s:
            for byte in encode_frame(b"slow") + b"50        only a bit":
                s.send(bytes([byte]))
                if stop.wait(0.02):
                    break

    def garbage() -> None:
        with connect() as s:
            s.sendall(rng.randbytes(rng.randrange(1, 4096)))
            time.sleep(0.01)

    def reset() -> None:
        s = connect()
        s.sendall(encode_frame(b"resetter") + b"100       half")
        abort_socket(s)

    def invalid_utf8() -> None:
        with connect() as s:
            s.sendall(encode_frame(b"bad\xff") if rng.random() < 0.5
                      else encode_frame(b"u8") + encode_frame(b"bad \xc3("))
            time.sleep(0.01)

    def join_leave() -> None:
        with connect() as s:
            s.sendall(encode_frame(b"cycler") + encode_frame(b"hello and goodbye"))

    def long_name() -> None:  # JOIN-5: refused from the header alone
        with connect() as s:
            s.sendall(encode_header(1024 * 1024) + b"n" * 65536)
            s.recv(1)

    def huge_name() -> None:  # the attack: 1 MiB name, 100 empty messages = 100 MiB per reader
        with connect() as s:
            s.sendall(encode_frame(b"N" * 1024 * 1024) + encode_frame(b"") * 100)
            stop.wait(0.2)

    def amplifier() -> None:  # ROBUST-7: 276 bytes owed per reader for each 10 sent
        with connect() as s:
            s.sendall(encode_frame(b"a" * 256))
            for _ in range(20):
                s.sendall(encode_frame(b"") * 20_000)

    def half_frames() -> None:  # LIMIT-3: 2 MB of a 4 MB frame, held until we leave
        with connect() as s:
            s.sendall(encode_frame(b"hoarder") + encode_header(4 * 1024 * 1024) + b"h" * 2_000_000)
            stop.wait(0.5)

    def silent() -> None:  # JOIN-4: never says who it is
        with connect():
            stop.wait(0.5)

    def non_reader() -> None:  # ROBUST-4: registered, never reads
        with connect() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(encode_frame(b"deaf"))
            stop.wait(3)

    return {f.__name__: f for f in (slowloris, garbage, reset, invalid_utf8, join_leave, long_name,
                                     huge_name, amplifier, half_frames, silent, non_reader)}


def test_observers_lose_nothing_while_attackers_do_their_worst(server: SpawnedServer) -> None:
    assert server.pid is not None
    baseline_fds = open_fds(server.pid)
    baseline_rss = server.rss_bytes() or 0
    honest, *observers = join_room(*server.address, ["honest", *(f"obs{i}" for i in range(OBSERVERS))],
                                   timeout=WAIT)
    seen: list[list[str]] = [[] for _ in observers]

    def observe(client: ChatClient, texts: list[str]) -> None:
        deadline = time.monotonic() + ATTACK_SECONDS + WAIT
        try:
            while len(texts) < MESSAGES and time.monotonic() < deadline:
                relay = client.receive(timeout=WAIT)
                if relay.sender == "honest":
                    texts.append(relay.text)
        except (OSError, ProtocolError) as exc:  # the assertion below says what was missed
            texts.append(f"observer stopped: {exc!r}")

    def discard(sock: socket.socket) -> None:  # the sender reads too, or it is a non-reader
        sock.settimeout(0.5)
        while not done.is_set():
            try:
                sock.recv(65536)
            except TimeoutError:
                pass
            except OSError:
                return

    done = threading.Event()
    readers = [threading.Thread(target=observe, args=(c, t)) for c, t in zip(observers, seen, strict=True)]
    readers.append(threading.Thread(target=discard, args=(honest.sock,)))
    for r in readers:
        r.start()
    stop = threading.Event()
    counts: Counter[str] = Counter()
    attackers = [threading.Thread(target=attack_loop, args=(stop, counts, name, attack))
                 for name, attack in make_attacks(server.address, stop).items()
                 for _ in range(2)]
    peak_rss = baseline_rss
    started = time.monotonic()
    for a in attackers:
        a.start()
    for i in range(MESSAGES):
        honest.send(str(i))
        time.sleep(ATTACK_SECONDS / MESSAGES)
        if i % 100 == 0:
            peak_rss = max(peak_rss, server.rss_bytes() or 0)
    stop.set()
    for a in attackers:
        a.join(WAIT)
    for r in readers[:-1]:
        r.join(WAIT)
    done.set()
    readers[-1].join(WAIT)
    elapsed = time.monotonic() - started

    expected = [str(i) for i in range(MESSAGES)]
    log = server.stderr_path.read_text()
    for client, texts in zip(observers, seen, strict=True):
        why = [line for line in log.splitlines() if f"'{client.name}'" in line or "honest" in line]
        assert texts == expected, why  # nothing lost, duplicated or reordered
    assert server.is_alive()
    join_room(*server.address, ["after-a", "after-b"], timeout=WAIT)[0].close()
    for c in (honest, *observers):
        c.close()
    deadline = time.monotonic() + WAIT  # silent ones go after --register-timeout
    while open_fds(server.pid) > baseline_fds and time.monotonic() < deadline:
        time.sleep(0.1)
    after_fds = open_fds(server.pid)
    after_rss = server.rss_bytes() or 0
    print(f"\nhostile room: {elapsed:.1f} s, {OBSERVERS} observers x {MESSAGES} messages, "
          f"attacks {dict(sorted(counts.items()))}; server RSS {baseline_rss >> 20} MiB at start, "
          f"{peak_rss >> 20} MiB peak (sampled), {after_rss >> 20} MiB after; "
          f"fds {baseline_fds} at start, {after_fds} after")
    assert after_fds <= baseline_fds
    assert after_rss <= baseline_rss + 64 * 1024 * 1024  # freed memory, less allocator slack
