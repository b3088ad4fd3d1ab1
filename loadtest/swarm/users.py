"""The abstract locust user of a chat swarm, its ``--chat-*`` options and its end-of-run report.

Runs only under locust (importing locust monkey-patches the process with
gevent); ``loadtest/locustfile.py`` subclasses :class:`ChatUser` into tiny
concrete users.  A :class:`ChatUser` owns one
:class:`loadtest.swarm.client.ChatClient` and a background greenlet that
reads every frame the server sends, so sending tasks never wait on reads.

At the end of a run, on the process that holds the merged statistics (the
master, or the only process), one summary line goes to the console and, with
``--chat-json FILE``, a chat-harness results document goes to FILE.
"""

from __future__ import annotations

import logging
import random
import sys
import time
from typing import Any

import gevent
from locust import User, between, events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner
from locust.stats import StatsError

from loadtest.swarm.client import REQUEST_TYPE, ChatClient, target_address, target_tls
from loadtest.swarm.options import ChatOptions, add_chat_options
from loadtest.swarm.results import PERCENTILES, EntryStats, make_locust_document, summary_line
from loadtest.swarm.watch import CHAT, EVENTS, locust_verdict
from reference import exit_codes
from reports.results import write_document

__all__ = ["ChatUser", "LocustReporter"]

logger = logging.getLogger("chat-swarm")


class LocustReporter:
    """The ChatClient's Reporter: locust request events, and this process's chat statistics."""

    def __init__(self, environment: Environment) -> None:
        self._fire = environment.events.request.fire
        self.delivered = CHAT.delivered
        self.failed = CHAT.failed

    def request(self, name: str, response_time_ms: float | None, length: int,
                exception: Exception | None = None) -> None:
        # Queued, not fired here: see loadtest.swarm.watch._DeferredEvents.
        EVENTS.add(self._fire, {"request_type": REQUEST_TYPE, "name": name,
                                "response_time": response_time_ms, "response_length": length,
                                "exception": exception, "context": {}})


class ChatUser(User):
    """One chat connection with a reader greenlet; subclasses add the tasks."""

    abstract = True
    #: Name of this user's ``broadcast`` entry (slow readers keep theirs apart).
    broadcast_name = "broadcast"
    #: Time deliveries into the chat statistics (µs, shown in the web UI's chat tab).
    record_latency = True
    wait_time = between(0.5, 1.5)

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.options = ChatOptions.from_namespace(environment.parsed_options)
        self.client: ChatClient | None = None
        self._reader: gevent.Greenlet | None = None

    # -- life cycle -------------------------------------------------------------
    def on_start(self) -> None:
        self.ensure_connected()

    def on_stop(self) -> None:
        self._stop_reader()
        if self.client is not None:
            self.client.finish()
            self.client.close()

    def ensure_connected(self) -> bool:
        """Connect (again, as a new sender, after the server closed us); False if that failed."""
        if self.client is not None and self.client.connected:
            return True
        self._stop_reader()
        reporter = LocustReporter(self.environment)
        try:
            address = target_address(self.host)
        except ValueError as exc:
            reporter.request("connect", None, 0, exc)
            return False
        options = self.options
        self.client = ChatClient(address, reporter, size=options.size, timeout=options.timeout,
                                 loss_grace=options.loss_grace, broadcast_name=self.broadcast_name,
                                 record_latency=self.record_latency,
                                 tls=target_tls(self.host, options.tls_ca, options.tls_insecure))
        if not self.client.connect():
            return False
        self._reader = gevent.spawn(self._read_forever, self.client)
        return True

    # -- reading ----------------------------------------------------------------
    def read_delay(self) -> float:
        """Seconds to pause after each message read (0: read as fast as they come)."""
        return 0.0

    def _read_forever(self, client: ChatClient) -> None:
        delay = self.read_delay()
        while client.connected:
            if client.receive_one():
                CHAT.read()
                if delay:
                    gevent.sleep(delay)

    def _stop_reader(self) -> None:
        if self._reader is not None:
            self._reader.kill(block=True, timeout=self.options.timeout)
            self._reader = None

    # -- pacing -----------------------------------------------------------------
    def start_pacing(self) -> None:
        """Wait a random part of one period before the first message.

        Users spawned together would otherwise send together, every period,
        and each burst makes the server queue a room's worth of relays: the
        swarm would measure its own synchronisation, not the server.
        """
        gevent.sleep(random.uniform(0.0, 1.0 / self.options.rate))
        self._next_due = time.monotonic()

    def chat_pace(self) -> float:
        """wait_time for senders: ``--chat-rate`` messages per second, on a fixed schedule."""
        due = getattr(self, "_next_due", None)
        now = time.monotonic()
        if due is None:
            due = now
        due += 1.0 / self.options.rate
        if due < now - 1.0:
            due = now  # far behind (a stall): start afresh rather than send a burst
        self._next_due = due
        return max(0.0, due - now)


# -- locust hooks ---------------------------------------------------------------
@events.init_command_line_parser.add_listener
def _add_chat_options(parser: Any, **_: Any) -> None:
    add_chat_options(parser)


@events.init.add_listener
def _check_options(environment: Environment, **_: Any) -> None:
    """Refuse a bad --host or --chat-* value in one line, with argparse's exit status 2."""
    options = environment.parsed_options
    if options is None:
        return
    try:
        ChatOptions.from_namespace(options)
        if options.host:
            target_address(options.host)
    except ValueError as exc:
        print(f"locust: error: {exc}", file=sys.stderr)
        sys.exit(exit_codes.USAGE)


class _LoadCpu:
    """CPU seconds spent by the processes that run users, since the test started.

    Each process counts its own (``time.process_time``); workers add theirs to
    every stats report, so the master knows the swarm's total.  Divided into
    the messages received, it gives the message rate one locust core sustains.
    """

    def __init__(self) -> None:
        self.started: float | None = None
        self.reported = 0.0
        self.from_workers = 0.0

    def own(self) -> float:
        return 0.0 if self.started is None else time.process_time() - self.started


_load_cpu = _LoadCpu()


@events.test_start.add_listener
def _start_cpu_clock(environment: Environment, **_: Any) -> None:
    if _load_cpu.started is None:
        _load_cpu.started = time.process_time()


@events.report_to_master.add_listener
def _send_cpu(client_id: str, data: dict[str, Any], **_: Any) -> None:
    used = _load_cpu.own()
    data["chat_cpu_s"] = used - _load_cpu.reported
    _load_cpu.reported = used


@events.worker_report.add_listener
def _add_worker_cpu(client_id: str, data: dict[str, Any], **_: Any) -> None:
    _load_cpu.from_workers += float(data.get("chat_cpu_s", 0.0))


def _entry_stats(entry: Any) -> EntryStats:
    return EntryStats(
        type=entry.method, name=entry.name, num_requests=entry.num_requests,
        num_failures=entry.num_failures, num_none_requests=entry.num_none_requests,
        mean=entry.avg_response_time, min=entry.min_response_time, max=entry.max_response_time,
        percentiles={key: entry.get_response_time_percentile(p) for key, p in PERCENTILES.items()},
        requests_per_s=entry.total_rps)


@events.quitting.add_listener
def _report(environment: Environment, **_: Any) -> None:
    """Summarise the merged statistics once, where they are merged."""
    if isinstance(environment.runner, WorkerRunner) or environment.runner is None:
        return
    EVENTS.flush()
    stats = environment.stats
    entries = [_entry_stats(e) for e in stats.entries.values() if e.method == REQUEST_TYPE]
    errors: dict[str, int] = {}
    for error in stats.errors.values():
        # A local error is the exception itself; one from a worker is already its repr.
        text = StatsError.parse_error(error.error)
        errors[text] = errors.get(text, 0) + error.occurrences
    last = stats.total.last_request_timestamp or stats.total.start_time
    host = environment.host or (environment.parsed_options.host if environment.parsed_options else None)
    try:
        address: tuple[str, int] | None = target_address(host)
    except ValueError:  # a bad host typed into the web UI: every connect failed
        address = None
    options = ChatOptions.from_namespace(environment.parsed_options)
    verdict = locust_verdict()
    doc = make_locust_document(
        entries, errors, host=host or "{}:{}".format(*target_address(None)), address=address,
        duration_s=max(0.0, last - stats.total.start_time),
        users=environment.runner.target_user_count or 0,
        cpu_warning=bool(environment.runner.cpu_warning_emitted
                         or getattr(environment.runner, "worker_cpu_warning_emitted", False)),
        options={k: v for k, v in vars(options).items() if k != "json"},
        latency_us=CHAT.latency.summary(), locust_process=verdict,
        relays_per_read=round(CHAT.deliveries / CHAT.reads, 2) if CHAT.reads else None,
        load_cpu_s=_load_cpu.from_workers if isinstance(environment.runner, MasterRunner)
        else _load_cpu.own())
    logger.info(summary_line(doc["summary"]))
    for text in [verdict["warning"], *verdict["notes"]]:
        if text:
            logger.warning(text)
    if options.json:
        logger.info("chat swarm results written to %s", write_document(options.json, doc))
