"""pytest plugin of the conformance suite: options, markers, the room fixture, verdicts, reports.

Registered once through the ``pytest11`` entry point (``chat-conformance``);
it does nothing to a session that collects no conformance case.  The target
server comes from ``reference.pytest_plugin`` (``--chat-server``,
``--chat-server-cmd``, fixture ``chat_target``); this plugin adds
``--chat-strict``, ``--chat-json``, ``--chat-expectations``, ``--chat-list``,
``--chat-case``, ``--chat-timeout``, ``--chat-no-preflight``, ``--chat-case-timeout``,
``--chat-patience`` and ``--chat-room-size``::

    pytest --pyargs conformance --chat-server-cmd 'python3 myserver.py {port}'

Before the first case the preflight (:mod:`conformance.preflight`) classifies
the target and stops the run unless it speaks the protocol.  Per case it keeps
the target healthy (a spawned server that died, or that failed the previous
case, is started afresh; an external one that died stops the run, saying so),
charges a death to the case that caused it (:mod:`conformance.crashes`),
opens a :class:`~conformance.peer.Room` with a wire transcript, turns the
outcome into a verdict (:mod:`conformance.verdicts`), and at the end prints
the report and writes the results document.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Generator, Iterator
from typing import Any

import pytest
from _pytest import junitxml

from conformance.crashes import CrashWatch, settle
from conformance.options import SuiteSettings, add_suite_options
from conformance.peer import CaseFailure, Room
from conformance.preflight import Preflight, run_preflight
from conformance.report import render_report, write_list
from conformance.requirements import REQUIREMENTS, Level, Marker
from conformance.selection import ExpectationsError, matches, matching
from conformance.verdicts import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NO_CASES,
    EXIT_TARGET,
    CaseInfo,
    CaseResult,
    build_document,
    exit_status,
    judge,
    summarise,
)
from conformance.wire import Wire
from reference.protocol import ProtocolError
from reference.pytest_plugin import set_target_spec, target_spec
from reference.target import ExternalServer, SpawnedServer, TargetError, TargetSpec
from reports.results import write_document

__all__ = ["CASE_KEY", "STATE_KEY", "SuiteState", "case_info", "chat_room", "chat_settings",
           "suite_state"]

STATE_KEY = pytest.StashKey["SuiteState"]()
CASE_KEY = pytest.StashKey[CaseInfo]()
ROOM_KEY = pytest.StashKey[Room]()

_CITATION = re.compile(r"^[A-Z]+-\d+:\s*")
#: How long after the preflight's clients close an external server is asked if it still accepts.
PREFLIGHT_GRACE = 0.2
#: How a death noticed in a case that had not yet done anything is worded (not its doing).
INHERITED = "not judged"
#: Exceptions that mean "the server misbehaved", as opposed to a bug in the suite.
SERVER_FAULTS = (AssertionError, OSError, ProtocolError, pytest.fail.Exception)


class SuiteState:
    """What one session of the suite has learnt so far."""

    def __init__(self, settings: SuiteSettings) -> None:
        self.settings = settings
        self.started = time.monotonic()
        self.results: dict[str, CaseResult] = {}
        self.dialects: list[str] | None = None
        self.preflight: Preflight | None = None
        self.preflight_stopped = False
        self.crashes = CrashWatch()

        self.handle: SpawnedServer | ExternalServer | None = None
        self.restart_reason: str | None = None
        self.restarts: list[str] = []
        self.target_error: str | None = None
        self.stop_reason: str | None = None
        self.unmatched_expectations: list[str] = []
        #: Cases of profiles the target does not claim, per profile: deselected, reported.
        self.unclaimed: Counter[str] = Counter()
        self.document: dict[str, Any] | None = None

    def charge_crash(self, info: CaseInfo, wire: Wire | None, when: str, action: str = "") -> None:
        """Record the target's death as a failure of its own (see conformance.crashes)."""
        if self.handle is not None:
            record = self.crashes.charge(self.handle, info, wire, when, action)
            if record is not None:
                self.results[f"crash::{info.id}::{len(self.results)}"] = record


def suite_state(config: pytest.Config) -> SuiteState:
    return config.stash[STATE_KEY]


# -- options and collection --------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chat-conformance", "chat-harness conformance suite")
    add_suite_options(group.addoption, prefix="chat-")
    group.addoption("--chat-case", action="append", metavar="ID_OR_GLOB", default=[],
                    help="run only cases whose ID matches (repeatable; * and ? are wildcards, "
                         "brackets are literal)")


@pytest.hookimpl(trylast=True)  # after the chat-target plugin has parsed the target
def pytest_configure(config: pytest.Config) -> None:
    for marker in Marker:
        config.addinivalue_line("markers", marker.help_text)
    try:
        settings = SuiteSettings.from_options(config.getoption)
    except ExpectationsError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[STATE_KEY] = SuiteState(settings)
    if settings.profiles:
        try:
            spec = target_spec(config)
        except KeyError:  # the chat-target plugin was disabled
            return
        if spec.is_reference:  # judge the embedded reference with the profiles it is asked about
            set_target_spec(config, dataclasses.replace(spec, reference_args=(
                *spec.reference_args, "--profile", ",".join(sorted(settings.profiles)))))


def case_info(item: pytest.Item, settings: SuiteSettings) -> CaseInfo | None:
    """The case behind a collected item, or None for an ordinary test."""
    mark = item.get_closest_marker(Marker.CASE.marker_name)
    if mark is None:
        return None
    base_id, requirement_id, level = (*mark.args, None)[:3]
    profiles = tuple(mark.kwargs.get("profile") or ())
    override = item.get_closest_marker(Marker.REQUIREMENT.marker_name)
    if override is not None:
        requirement_id, level = (*override.args, None)[:2]
    requirement = REQUIREMENTS[requirement_id]
    callspec = getattr(item, "callspec", None)
    case_id = f"{base_id}[{callspec.id}]" if callspec is not None else base_id
    doc = (getattr(getattr(item, "function", None), "__doc__", None) or "").strip()
    # Docstrings start by citing their requirement ("ROBUST-1: ..."); the record says it already.
    title = _CITATION.sub("", doc.splitlines()[0]) if doc else ""
    expectation = next((e for e in settings.expectations if matches(e.case, case_id)), None)
    return CaseInfo(case_id, requirement, level or requirement.level, title, expectation, profiles)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    state = suite_state(config)
    settings = state.settings
    keep, drop, used = [], [], set()
    infos = []
    unclaimed_patterns: dict[str, str] = {}
    for item in items:
        info = case_info(item, settings)
        if info is None:
            keep.append(item)
            continue
        infos.append(info)
        item.stash[CASE_KEY] = info
        # -k can then select by case ID or requirement ID, e.g. -k "relay.basic or FRAME-3".
        item.extra_keyword_matches.update({info.id, info.requirement.id})
        item.add_marker(pytest.mark.timeout(settings.case_timeout))
        # JUnit XML carries them as <properties>, so CI reporters can show the case IDs.
        item.user_properties += [("case_id", info.id), ("requirement", info.requirement.id),
                                 ("level", info.level.value)]
        pattern = matching(settings.case_patterns, info.id)
        if settings.case_patterns and pattern is None:
            drop.append(item)
            continue
        missing = [p for p in info.profiles if p not in settings.profiles]
        if missing:
            # A profile the target does not claim: not judged, only counted for the report.
            state.unclaimed[missing[0]] += 1
            if pattern is not None:
                unclaimed_patterns.setdefault(pattern, missing[0])
            drop.append(item)
            continue
        waived_by = info.requirement.waived_by
        if waived_by in settings.profiles:
            item.add_marker(pytest.mark.skip(
                reason=f"{info.requirement.id} does not apply: the target claims profile "
                       f"{waived_by}, whose rules replace it (PROTOCOL.md section 8)"))
        used.add(pattern)
        keep.append(item)
    if not infos:
        return
    unknown = [p for p in settings.case_patterns if p not in used]
    if unknown:
        if unknown[0] in unclaimed_patterns:
            raise pytest.UsageError(f"{unknown[0]!r} selects only cases of profile "
                                    f"{unclaimed_patterns[unknown[0]]!r}: add --profile "
                                    f"{unclaimed_patterns[unknown[0]]} if the target claims it")
        raise pytest.UsageError(f"no case matches {unknown[0]!r}; see the case IDs with --list")
    state.unmatched_expectations = [e.case for e in settings.expectations
                                    if not any(matches(e.case, i.id) for i in infos)]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """<testcase name> is the stable case ID and classname its requirement group, for CI reporters.

    pytest derives both from the node ID; attributes set on the test's node
    reporter before its first report override them (what ``record_xml_attribute``
    does, without its warning).  Only cases that run get a reporter.
    """
    info = item.stash.get(CASE_KEY, None)
    xml = item.config.stash.get(junitxml.xml_key, None)
    if xml is not None and info is not None:
        reporter = xml.node_reporter(item.nodeid)
        reporter.add_attribute("name", info.id)
        reporter.add_attribute("classname", info.requirement.group)


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    """--chat-list: print the selected cases instead of running them."""
    if not suite_state(session.config).settings.list_only:
        return None
    infos = [item.stash[CASE_KEY] for item in session.items if CASE_KEY in item.stash]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    write = reporter.write_line if reporter is not None else print
    try:
        write_list(infos, write, suite_state(session.config).unclaimed)
    except BrokenPipeError:  # chat-conformance --list | head
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return True


# -- the target and the room ------------------------------------------------------
def _target(request: pytest.FixtureRequest, state: SuiteState) -> SpawnedServer | ExternalServer:
    if state.handle is None:
        try:
            state.handle = request.getfixturevalue("chat_target")
        except pytest.exit.Exception as exc:
            state.target_error = str(exc.msg)
            raise
    return state.handle


def _make_ready(request: pytest.FixtureRequest, state: SuiteState, case_id: str) -> None:
    """Start a spawned server afresh if it died or if the previous case failed."""
    handle = state.handle
    if not isinstance(handle, SpawnedServer):
        return
    reason = None
    if state.crashes.dying(handle):
        reason = (f"the server was not running ({handle.describe_exit() or 'it stopped'})"
                  if not handle.is_alive() else "the server stopped accepting connections")
        if state.crashes.last_case is not None:
            # Died after the last case's call: as its clients closed, or on its way out.
            state.charge_crash(*state.crashes.last_case, "after")
    elif state.restart_reason:
        reason = state.restart_reason
    if reason is None:
        return
    state.restart_reason = None
    try:
        handle.restart()
    except TargetError as exc:
        state.stop_reason = f"the server could not be started again: {exc}"
        request.session.shouldstop = state.stop_reason
        raise CaseFailure("the server starts again for the next case", str(exc)) from None
    state.restarts.append(f"before {case_id}: {reason}; started afresh")


@pytest.fixture
def chat_settings(request: pytest.FixtureRequest) -> SuiteSettings:
    """What the suite was told (--chat-patience, --chat-room-size ...), for cases that scale."""
    return suite_state(request.config).settings


@pytest.fixture
def chat_room(request: pytest.FixtureRequest) -> Iterator[Room]:
    """A room of recorded clients on the target; closed after the case."""
    state = suite_state(request.config)
    info = request.node.stash.get(CASE_KEY, None)
    handle = _target(request, state)
    case_id = info.id if info else request.node.name
    _make_ready(request, state, case_id)
    if state.preflight is None:
        _preflight(request, state, handle, case_id)
    room = Room(handle.address, Wire(), state.settings.timeouts,
                history="history" in state.settings.profiles)
    request.node.stash[ROOM_KEY] = room
    try:
        yield room
    finally:
        room.close()
        if info is not None:
            _check_after_close(request, state, info, room.wire)
            state.crashes.last_case = (info, room.wire)


def _preflight(request: pytest.FixtureRequest, state: SuiteState,
               handle: SpawnedServer | ExternalServer, case_id: str) -> None:
    """Classify the target once, before the first case; stop the run unless it speaks the protocol."""
    state.preflight = result = run_preflight(handle.address, timeout=state.settings.timeouts.join)
    state.dialects = list(result.dialects)
    # The probe clients have just closed: give a server that dies of that its moment (a
    # spawned one is watched; an external one is asked once, a connection being a disturbance).
    if isinstance(handle, SpawnedServer):
        settle(handle.pid)
    else:
        time.sleep(PREFLIGHT_GRACE)
    preflight = CaseInfo("preflight", REQUIREMENTS["ROBUST-7"], Level.MUST,
                         "the server survives the preflight's two probe clients")
    wire = Wire()
    wire.note("preflight", f"client: {result.steps[-1]}, then closed")
    state.crashes.last_case = (preflight, wire)  # a death noticed by the first case is its
    if not handle.is_alive():
        state.charge_crash(preflight, wire, "during")
        if isinstance(handle, ExternalServer):
            state.stop_reason = (f"the server at {handle.label} stopped accepting connections "
                                 "during the preflight; it was not started by this suite, so "
                                 "no case was run")
            pytest.exit(state.stop_reason, returncode=EXIT_FAILED)
    elif result.stops_run and state.settings.preflight:
        state.preflight_stopped = True
        pytest.exit(f"preflight: {result.headline}", returncode=EXIT_FAILED)
    _make_ready(request, state, case_id)


def _check_after_close(request: pytest.FixtureRequest, state: SuiteState, info: CaseInfo,
                       wire: Wire) -> None:
    """Charge a death at the case's teardown (its clients closing) to the case itself."""
    handle = state.handle
    if handle is None or state.stop_reason is not None or not state.crashes.dead_after_close(handle):
        return
    state.charge_crash(*state.crashes.blame(info, wire, "at the end of"))
    if isinstance(handle, ExternalServer):
        state.stop_reason = (f"the server at {handle.label} stopped accepting connections at the "
                             f"end of {info.id}; it was not started by this suite, so the "
                             "remaining cases were not run")
        request.session.shouldstop = state.stop_reason


def _death(item: pytest.Item, state: SuiteState, cut_off: bool) -> str:
    """How the target died during the case ('' if it is alive).

    Starts with :data:`INHERITED` when it had died before the case did anything.
    """
    handle = state.handle
    if cut_off and handle is not None:
        # A crash takes a moment (a traceback to print): give it that, to blame the right case.
        deadline = time.monotonic() + 0.5
        while handle.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
    if handle is None or handle.is_alive():
        return ""
    room = item.stash.get(ROOM_KEY, None)
    culprit, wire, when = state.crashes.blame(item.stash[CASE_KEY],
                                              room.wire if room is not None else None)
    state.charge_crash(culprit, wire, when)
    if culprit is not item.stash[CASE_KEY]:
        return (f"{INHERITED}: the server had died after {culprit.id} (see crash[{culprit.id}]) "
                "before this case could connect")
    if isinstance(handle, SpawnedServer):
        return f"the server died during this case: {handle.describe_exit() or 'it stopped'}"
    state.stop_reason = (f"the server at {handle.label} stopped accepting connections during "
                         f"{item.stash[CASE_KEY].id}; it was not started by this suite, so it "
                         "cannot be restarted and the remaining cases were not run")
    item.session.shouldstop = state.stop_reason
    return f"the server at {handle.label} died during this case (it no longer accepts connections)"


# -- verdicts -------------------------------------------------------------------------
@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    info = item.stash.get(CASE_KEY, None)
    if info is None:
        return report
    state = suite_state(item.config)
    report.location = (report.location[0], report.location[1], info.id)
    if call.when == "setup" and report.passed or call.when == "teardown" and not report.failed:
        return report
    exc = call.excinfo.value if call.excinfo is not None else None
    room = item.stash.get(ROOM_KEY, None)
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        state.results[item.nodeid] = CaseResult(info, "skipped", detail=reason.removeprefix("Skipped: "))
        return report
    # A connection the server closed or reset is how a crash shows from outside.
    cut_off = isinstance(exc, OSError) or (isinstance(exc, CaseFailure) and any(
        w in exc.got for w in ("closed", "reset", "connect failed")))
    died = _death(item, state, cut_off) if call.when == "call" else ""
    if died.startswith(INHERITED):
        # Not this case's doing: the crash is charged to the case before; this one is not judged.
        state.results[item.nodeid] = CaseResult(info, "skipped", report.duration, died)
        report.outcome = "skipped"
        report.longrepr = (str(item.path), 0, died)
        return report
    held = report.passed and not died
    verdict = judge(info, held=held, server_fault=exc is None or isinstance(exc, SERVER_FAULTS))
    if call.when == "teardown" and verdict != "error":
        verdict = "error"
    if isinstance(exc, CaseFailure):
        detail = exc.detail
    elif exc is not None:
        detail = f"{type(exc).__name__}: {exc}".strip()
    else:
        detail = "; ".join(room.findings) if room is not None and held else ""
    if verdict == "informational" and not held:
        # A MAY case that could not finish is still a finding, never a failure.
        found = "; ".join(room.findings) + "; " if room is not None and room.findings else ""
        detail = f"{found}could not find out: {detail.splitlines()[-1] if detail else 'the case stopped'}"
    if died:
        detail = f"{detail}\n{died}".strip()
    transcript = room.wire.render() if room is not None and not held else ""
    result = CaseResult(info, verdict, report.duration, detail, transcript or None)
    if call.when == "teardown" and item.nodeid in state.results:
        result.notes.append(f"(teardown failed after a {state.results[item.nodeid].verdict})")
    state.results[item.nodeid] = result
    item.user_properties.append(("verdict", verdict))
    if verdict in ("fail", "non-strict", "xfail", "error"):
        state.restart_reason = f"{info.id} failed"
    _shape_report(report, result, exc, state.settings.strict)
    return report


def _shape_report(report: pytest.TestReport, result: CaseResult, exc: BaseException | None,
                  strict: bool) -> None:
    """Make pytest's outcome, letters and failure text agree with the verdict."""
    verdict, info = result.verdict, result.info
    report.chat_verdict = verdict  # type: ignore[attr-defined]  # read by pytest_report_teststatus
    reason = info.expected_failure.reason if info.expected_failure else ""
    if verdict == "xpass":
        report.wasxfail = reason
        return
    if verdict == "xfail":
        report.outcome = "skipped"
        report.wasxfail = reason
        return
    if verdict == "non-strict" and not strict or verdict == "informational":
        # A MAY case that raised is reported, not judged (its detail says what happened).
        report.outcome = "passed"
        report.longrepr = None
        report.sections = []
        return
    if verdict in ("fail", "non-strict", "error"):
        report.outcome = "failed"
        heading = f"{info.requirement.id} ({info.level.value}): {info.requirement.text}"
        if exc is None or isinstance(exc, CaseFailure):
            text = [heading, "", result.detail]
            if result.transcript:
                text += ["", result.transcript]
            report.longrepr = "\n".join(text)
        elif result.transcript:
            report.sections.append(("wire transcript", result.transcript))


#: pytest's category, letter and word per verdict, so its count line and the suite's agree.
_STATUS = {"non-strict": ("non-strict", "n", "NON-STRICT"), "informational": ("informational", "i", "INFO"),
           "error": ("error", "E", "ERROR")}


def pytest_report_teststatus(report: pytest.TestReport,
                             config: pytest.Config) -> tuple[str, str, str] | None:
    verdict = getattr(report, "chat_verdict", None)
    if getattr(report, "wasxfail", None) is not None or verdict not in _STATUS:
        return None
    if report.when == "call" or report.failed:
        status = _STATUS[str(verdict)]
        # A non-strict case that --strict fails is still counted as "non-strict", in capitals.
        return (status[0], status[1].upper(), status[2]) if report.failed else status
    return None


# -- the end of the run --------------------------------------------------------------
def _exit_status(state: SuiteState, pytest_status: int) -> int:
    if state.target_error is not None:
        return EXIT_TARGET
    if state.preflight_stopped:
        return EXIT_FAILED
    if pytest_status in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.NO_TESTS_COLLECTED):
        return EXIT_NO_CASES
    if pytest_status == pytest.ExitCode.INTERNAL_ERROR:
        return EXIT_FAILED  # the suite erred; a target that broke it was caught above (3)
    if pytest_status == pytest.ExitCode.INTERRUPTED and state.stop_reason is None:
        return EXIT_INTERRUPTED
    status = exit_status((r.verdict for r in state.results.values()), state.settings.strict)
    return max(status, 1 if pytest_status == pytest.ExitCode.TESTS_FAILED else 0)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(STATE_KEY, None)
    if state is None or state.settings.list_only:
        return
    if (not state.results and state.target_error is None and state.preflight is None
            and state.settings.json_path is None):
        return
    handle = state.handle
    extra: dict[str, Any] = {"restarts": state.restarts}
    if state.target_error:
        extra["target_error"] = state.target_error
    if state.stop_reason:
        extra["stopped"] = state.stop_reason
    if state.unmatched_expectations:
        extra["unmatched_expectations"] = state.unmatched_expectations
    extra["profiles"] = {"claimed": sorted(state.settings.profiles),
                         "not_claimed": dict(sorted(state.unclaimed.items()))}
    status = _exit_status(state, exitstatus)
    if status == EXIT_INTERRUPTED:
        # Never a PASS: the cases that did not run might have failed.
        extra["incomplete"] = (f"interrupted after {len(state.results)} of {len(session.items)} "
                               "selected cases")
    if state.preflight is not None:
        extra["preflight"] = state.preflight.record(stopped=state.preflight_stopped)
    summary = summarise(state.results.values(), strict=state.settings.strict,
                        started=state.started, dialects=state.dialects or [],
                        status=status, **extra)
    try:
        spec: TargetSpec | None = target_spec(session.config)
    except KeyError:  # the chat-target plugin was disabled
        spec = None
    label = handle.label if handle is not None else (spec.label if spec else "?")
    address = handle.address if handle is not None else (spec.server if spec else None)
    state.document = build_document(state.results.values(), summary, label=label, address=address,
                                    command=spec.command if spec else None)
    if state.settings.json_path is not None:
        write_document(state.settings.json_path, state.document)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: Any, exitstatus: int,
                            config: pytest.Config) -> Generator[None, None, None]:
    state = config.stash.get(STATE_KEY, None)
    doc = state.document if state is not None else None
    failure_sections = config.getoption("tbstyle", "auto") != "no"
    if doc is not None and failure_sections:
        # pytest prints its failure sections next: the causes first, so they are read first.
        render_report(terminalreporter, doc, part="head")
    yield
    if doc is not None:
        verbose = int(config.getoption("verbose", 0)) > 0
        transcripts = state is not None and (state.settings.transcripts or verbose)
        render_report(terminalreporter, doc, part="tail",
                      transcripts=transcripts and not failure_sections)


