"""Locust hooks for the chat figures: shipping them to the master, watching locust, the chat tab.

Runs only under locust (it imports locust, so gevent).  The bookkeeping is in
``loadtest.swarm.chat``; this module wires it to locust's events:

* readers queue their request events in :data:`EVENTS`, fired in batches
  off their path (see :class:`_DeferredEvents`);
* every process that runs users keeps :data:`CHAT` and a :class:`SelfWatch`
  fed by a greenlet that sleeps 100 ms at a time and records how late it
  woke up; workers add their delta and their watch to each stats report;
* while the test runs, the first time locust itself is the bottleneck it
  says so in the log, in plain words;
* the web UI gets a "Chat" tab (locust's extended-tab mechanism, as in
  locust's ``examples/extend_web_ui.py``): live deliveries/s, p50 / p90 /
  p99 / p99.9 / max in µs, and lost / duplicated / reordered / mislabelled /
  unpaired counts; ``/chat/stats`` serves the same row as JSON.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import gevent
from flask import Response, jsonify, request
from locust import events
from locust.env import Environment
from locust.runners import MasterRunner

from loadtest.swarm.chat import ChatStats, SelfWatch, judge_locust

__all__ = ["CHAT", "EVENTS", "TAB_KEY", "locust_verdict"]

logger = logging.getLogger("chat-swarm")

#: This process's chat figures (on the master: everyone's, added up).
CHAT = ChatStats()
TAB_KEY = "chat"
_WATCH_SLEEP_S = 0.1
_TAB_COLUMNS = [
    ("deliveries_per_s", "Deliveries/s"), ("deliveries", "Deliveries"),
    ("p50_us", "p50 (µs)"), ("p90_us", "p90 (µs)"), ("p99_us", "p99 (µs)"),
    ("p99_9_us", "p99.9 (µs)"), ("max_us", "Max (µs)"),
    ("lost", "Lost"), ("duplicated", "Duplicated"), ("reordered", "Reordered"),
    ("mislabelled", "Mislabelled"), ("unpaired", "Unpaired"), ("echoed", "Echoed"),
    ("locust", "Locust itself"),
]


class _Watcher:
    """The greenlet that measures this process's event-loop lag, and its verdict so far."""

    def __init__(self) -> None:
        self.watch: SelfWatch | None = None
        self.greenlet: gevent.Greenlet | None = None
        self.warned = False

    def start(self, name: str) -> None:
        if self.greenlet is None:
            self.watch = SelfWatch(name)
            self.greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        if self.greenlet is not None:
            self.greenlet.kill(block=False)
            self.greenlet = None

    def _run(self) -> None:
        assert self.watch is not None
        ticks = 0
        while True:
            asked = time.monotonic_ns()
            gevent.sleep(_WATCH_SLEEP_S)
            self.watch.woke_late(time.monotonic_ns() - asked - int(_WATCH_SLEEP_S * 1e9))
            ticks += 1
            if ticks % 10 == 0:  # once a second
                snapshot = self.watch.snapshot()
                CHAT.watch[snapshot["name"]] = snapshot
                verdict = judge_locust([snapshot])
                if verdict["warning"] and not self.warned and ticks >= 30:
                    self.warned = True
                    logger.warning(verdict["warning"])


_WATCHER = _Watcher()


class _DeferredEvents:
    """Locust request events, fired in batches off the readers' path.

    Firing one event costs locust's statistics bookkeeping; done in the
    reader, every reader woken by the same broadcast waited for the ones
    before it to finish theirs, and that wait was counted as the server's
    latency.  Readers now only queue the event (the latency itself is taken
    at the read); a greenlet fires the queue every ``_FLUSH_EVERY_S``, and
    every queued event is fired before any statistics are read or sent.
    """

    def __init__(self) -> None:
        self.queue: deque[tuple[Callable[..., Any], dict[str, Any]]] = deque()
        self.greenlet: gevent.Greenlet | None = None

    def add(self, fire: Callable[..., Any], event: dict[str, Any]) -> None:
        self.queue.append((fire, event))
        if self.greenlet is None:
            self.greenlet = gevent.spawn(self._run)

    def flush(self) -> None:
        queue = self.queue
        while queue:
            fire, event = queue.popleft()
            fire(**event)

    def _run(self) -> None:
        while True:
            gevent.sleep(_FLUSH_EVERY_S)
            self.flush()


EVENTS = _DeferredEvents()
_FLUSH_EVERY_S = 0.05


def locust_verdict() -> dict[str, Any]:
    """Locust's verdict on itself over every process that ran users (final, at the end)."""
    if _WATCHER.watch is not None:
        snapshot = _WATCHER.watch.snapshot()
        CHAT.watch[snapshot["name"]] = snapshot
    return judge_locust(list(CHAT.watch.values()))


@events.test_start.add_listener
def _start_watching(environment: Environment, **_: Any) -> None:
    if not isinstance(environment.runner, MasterRunner):  # the master runs no users
        _WATCHER.start("the locust process" if environment.runner is None
                       or type(environment.runner).__name__ == "LocalRunner"
                       else f"worker {getattr(environment.runner, 'client_id', '?')}")


@events.test_stop.add_listener
def _stop_watching(environment: Environment, **_: Any) -> None:
    EVENTS.flush()
    if _WATCHER.watch is not None:
        snapshot = _WATCHER.watch.snapshot()
        CHAT.watch[snapshot["name"]] = snapshot
    _WATCHER.stop()


@events.report_to_master.add_listener
def _send_chat(client_id: str, data: dict[str, Any], **_: Any) -> None:
    EVENTS.flush()  # too late for this report's request stats, in time for the next one
    data["chat"] = CHAT.take_delta()
    if _WATCHER.watch is not None:
        data["chat_watch"] = _WATCHER.watch.snapshot()


@events.worker_report.add_listener
def _add_chat(client_id: str, data: dict[str, Any], **_: Any) -> None:
    if "chat" in data:
        CHAT.add_delta(data["chat"])
    if "chat_watch" in data:
        CHAT.watch[str(data["chat_watch"].get("name", client_id))] = dict(data["chat_watch"])


@events.init.add_listener
def _chat_tab(environment: Environment, **_: Any) -> None:
    """Add the Chat tab to locust's web UI, and ``/chat/stats``."""
    web_ui = environment.web_ui
    if web_ui is None:
        return
    web_ui.template_args["extended_tabs"] = [{"title": "Chat", "key": TAB_KEY}]
    web_ui.template_args["extended_tables"] = [
        {"key": TAB_KEY, "structure": [{"key": key, "title": title} for key, title in _TAB_COLUMNS]}]

    @web_ui.app.after_request
    def _extend_stats(response: Response) -> Response:
        if request.path != "/stats/requests" or response.json is None:
            return response
        extended = [{"key": TAB_KEY, "data": [CHAT.row()]}]
        response.set_data(json.dumps({**response.json, "extended_stats": extended}))
        return response

    @web_ui.app.route("/chat/stats")
    def _chat_stats() -> Response:
        return jsonify(CHAT.row())
