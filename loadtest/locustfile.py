"""Swarm any 10-byte-header chat server with locust.

    locust -f loadtest/locustfile.py --host 127.0.0.1:1234            # web UI on :8089
    locust -f loadtest/locustfile.py --host tcp://10.0.0.5:1234 --headless -u 50 -r 10 -t 1m
    locust -f loadtest/locustfile.py --host 127.0.0.1:1234 --processes 4 --headless -u 200 -t 1m

Options (defaults in ``[tool.locust]`` of pyproject.toml): ``--chat-size``,
``--chat-rate``, ``--chat-timeout``, ``--chat-slow-delay``,
``--chat-loss-grace``, ``--chat-json``.  Pick users by class name on the
command line (``... Chatter Lurker``); by default all three run, by weight.
"""

from __future__ import annotations

from locust import task

from loadtest.swarm.users import ChatUser


class Chatter(ChatUser):
    """Sends ``--chat-rate`` stamped messages per second and reads everything."""

    weight = 8

    def on_start(self) -> None:
        super().on_start()
        self.start_pacing()

    def wait_time(self) -> float:
        return self.chat_pace()

    @task
    def chat(self) -> None:
        if self.ensure_connected() and self.client is not None:
            self.client.send_message()


class Lurker(ChatUser):
    """Only reads: every other client's message must reach it once, in order."""

    weight = 2

    @task
    def lurk(self) -> None:
        self.ensure_connected()


class SlowReader(ChatUser):
    """Reads, but pauses ``--chat-slow-delay`` s after each message; the room must not wait."""

    weight = 1
    broadcast_name = "broadcast to slow readers"
    record_latency = False  # its latency is the queue it builds, not the server's

    def read_delay(self) -> float:
        return self.options.slow_delay

    @task
    def lurk(self) -> None:
        self.ensure_connected()
