"""``chat-report scorecard``: conformance, a latency sweep and the limits probe against one server.

The scorecard runs the producers as their console scripts do (``chat-conformance``,
``chat-load latency``, ``chat-load limits``), each writing its JSON results
into the output folder, then merges what they wrote into one report.  It never
imports the producers (reports/ is on the ground floor), so every step can also
be run alone, in CI or on another machine, and give the same file.

The target:

* default, the embedded reference server: started ONCE here through
  :func:`reference.target.open_target`; each step gets ``--server HOST:PORT``.
  If it died during a step, the report says how, and it is restarted so the
  next step still measures something;
* ``--server HOST:PORT``: passed on to each step as it is;
* ``--server-cmd CMD``: checked once here (it must start), then passed on, so
  each step runs a fresh instance and the conformance suite can restart one
  that a case killed -- what a shared instance could not allow.

A step that fails, times out, is not installed or writes no results is shown
in the report with the end of its log; it never stops the other steps.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reference.printable import printable_text
from reference.process_group import process_group_start
from reference.target import (
    ExternalServer,
    SpawnedServer,
    TargetError,
    TargetSpec,
    open_target,
    read_tail,
    stop_process_group,
)
from reports.results import ResultsError, load_document

__all__ = [
    "ScorecardConfig",
    "ScorecardRun",
    "Step",
    "StepOutcome",
    "default_steps",
    "resolve_tool",
    "run_scorecard",
]

LOG_TAIL_LINES = 15
LOG_TAIL_BYTES = 64 * 1024
#: How long a step may take to clean up (stop its own server, write its JSON) after SIGTERM.
STEP_STOP_TIMEOUT = 15.0


@dataclass(frozen=True)
class ScorecardConfig:
    """Everything the scorecard needs, parsed once from the command line."""

    spec: TargetSpec
    out_dir: Path = Path("scorecard")
    sweep: str = "2,10,50"
    duration_s: float = 3.0
    limits_max: int = 2000
    limits_step: int = 250
    #: Per-step ceilings: generous, because 2 shared cores can be slow, but bounded.
    conformance_timeout_s: float = 420.0
    latency_timeout_s: float = 240.0
    limits_timeout_s: float = 300.0


@dataclass(frozen=True)
class Step:
    """One producer run: ``tool`` + ``args`` + the target options + ``--json FILE``."""

    name: str
    title: str
    tool: str
    args: tuple[str, ...]
    json_name: str
    timeout_s: float
    #: Exit statuses after which the JSON holds valid results (conformance: 1 = MUST failures).
    result_codes: frozenset[int] = frozenset({0})
    #: Exit status meaning "the target was unavailable".
    unavailable_code: int = 3


@dataclass
class StepOutcome:
    step: Step
    status: str            # ok, failures, target-unavailable, error, timeout, not-installed, no-results
    exit_code: int | None
    duration_s: float
    detail: str
    argv: list[str]
    json_path: Path
    log_path: Path
    document: dict[str, Any] | None = None
    target_note: str = ""  # set when the shared target died during this step

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        # Only the end of the log is read, and shown printable: a step's log holds
        # what the server under test made it print.
        text = read_tail(self.log_path, LOG_TAIL_BYTES).decode("utf-8", "surrogateescape")
        return printable_text("\n".join(text.rstrip().split("\n")[-lines:]), keep_newlines=True)


@dataclass
class ScorecardRun:
    config: ScorecardConfig
    target_label: str
    outcomes: list[StepOutcome] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    duration_s: float = 0.0
    #: Why the run stopped early (Ctrl-C or SIGTERM), or "" when every step got its turn.
    interrupted: str = ""

    @property
    def documents(self) -> list[dict[str, Any]]:
        return [o.document for o in self.outcomes if o.document is not None]

    @property
    def exit_status(self) -> int:
        """0 when every step produced results and nothing failed, else 1."""
        return 0 if self.outcomes and not self.interrupted and all(o.ok for o in self.outcomes) else 1


def default_steps(config: ScorecardConfig) -> list[Step]:
    """The three steps with the flags their producers document."""
    return [
        Step("conformance", "Conformance suite", "chat-conformance", (), "conformance.json",
             config.conformance_timeout_s, result_codes=frozenset({0, 1})),
        Step("latency", f"Latency sweep ({config.sweep} clients)", "chat-load",
             ("latency", "--sweep", config.sweep, "--duration", f"{config.duration_s:g}"),
             "latency.json", config.latency_timeout_s),
        Step("limits", f"Limits probe (up to {config.limits_max} clients)", "chat-load",
             ("limits", "--max", str(config.limits_max), "--step", str(config.limits_step)),
             "limits.json", config.limits_timeout_s, result_codes=frozenset({0, 1})),
    ]


def resolve_tool(name: str) -> list[str] | None:
    """The argv prefix that runs console script ``name``: on PATH or beside this Python."""
    found = shutil.which(name)
    if found is None:
        sibling = Path(sys.executable).with_name(name)
        found = str(sibling) if sibling.is_file() and os.access(sibling, os.X_OK) else None
    return [found] if found else None


def _last_line(path: Path) -> str:
    # Split at newlines only: a carriage return in the line is evidence, shown as \r.
    lines = read_tail(path, 2048).decode("utf-8", "surrogateescape").strip().split("\n")
    return printable_text(lines[-1].strip()) if lines else ""


def run_step(step: Step, prefix: Sequence[str] | None, target_args: Sequence[str], out_dir: Path,
             on_output: Callable[[str], None] = lambda line: None) -> StepOutcome:
    """Run one producer with a deadline; classify how it ended; load its JSON."""
    json_path = out_dir / step.json_name
    log_path = out_dir / "logs" / f"{step.name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.unlink(missing_ok=True)  # never report a previous run's file as this run's
    if prefix is None:
        log_path.write_text(f"{step.tool}: not installed\n", encoding="utf-8")
        return StepOutcome(step, "not-installed", None, 0.0,
                           f"{step.tool} is not installed (pip install '.[all]')", [step.tool],
                           json_path, log_path)
    argv = [*prefix, *step.args, *target_args, "--json", str(json_path)]
    env = dict(os.environ, COLUMNS="100", PYTHONUNBUFFERED="1")
    started = time.monotonic()
    with log_path.open("wb") as log:
        log.write(f"$ {' '.join(argv)}\n".encode())
        log.flush()
        group = process_group_start()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=env, start_new_session=group.start_new_session,
                                creationflags=group.creationflags)
        try:
            timed_out = True
            while time.monotonic() - started < step.timeout_s:
                try:
                    proc.wait(0.25)
                    timed_out = False
                    break
                except subprocess.TimeoutExpired:
                    on_output(_last_line(log_path))
        finally:
            if proc.poll() is None:
                # SIGTERM to the step's group first: every producer handles it like Ctrl-C,
                # stops the server it started and writes what it has; SIGKILL only after that.
                stop_process_group(proc, STEP_STOP_TIMEOUT)
    duration = time.monotonic() - started
    code = proc.returncode
    outcome = StepOutcome(step, "ok", code, duration, "", argv, json_path, log_path)
    if timed_out:
        outcome.status, outcome.detail = "timeout", f"stopped after {step.timeout_s:g} s without finishing"
    elif code == step.unavailable_code:
        outcome.status, outcome.detail = "target-unavailable", _last_line(log_path) or "target unavailable"
    elif code not in step.result_codes:
        outcome.status = "error"
        outcome.detail = f"exited with status {code}: {_last_line(log_path)}".rstrip(": ")
    if json_path.exists():
        try:
            outcome.document = load_document(json_path)
        except ResultsError as exc:
            outcome.status, outcome.detail = "error", str(exc)
    elif outcome.status == "ok":
        outcome.status, outcome.detail = "no-results", f"exited {code} but wrote no {json_path.name}"
    if outcome.status == "ok" and code != 0:
        outcome.status, outcome.detail = "failures", f"exit status {code}: the results show failures"
    elif outcome.status == "ok" and (outcome.document or {}).get("summary", {}).get("ok") is False:
        # a producer that exited 0 yet judged its own results not ok: believe the results
        outcome.status, outcome.detail = "failures", "the results show failures"
    return outcome


def _target_args(spec: TargetSpec, handle: SpawnedServer | ExternalServer | None) -> list[str]:
    """The steps' target options; a TLS target keeps its scheme and how to verify it."""
    tls = handle.tls if handle is not None else spec.tls
    if spec.command is not None:
        args = ["--server-cmd", spec.command, "--start-timeout", f"{spec.start_timeout:g}"]
        if spec.tls is not None:
            args.append("--tls")
    else:
        assert handle is not None
        host, port = handle.address
        args = ["--server", f"{'tls://' if tls is not None else ''}{host}:{port}"]
    if tls is not None and tls.ca:
        args += ["--tls-ca", tls.ca]
    if tls is not None and tls.insecure:
        args.append("--tls-insecure")
    return args


def run_scorecard(config: ScorecardConfig, *,
                  tools: Mapping[str, Sequence[str] | None] | None = None,
                  steps: Sequence[Step] | None = None,
                  on_start: Callable[[Step], None] = lambda step: None,
                  on_output: Callable[[Step, str], None] = lambda step, line: None,
                  on_done: Callable[[StepOutcome], None] = lambda outcome: None) -> ScorecardRun:
    """Run every step against one target; raise TargetError if it is unavailable at the start.

    ``tools`` maps a tool name to its argv prefix (default: :func:`resolve_tool`),
    so tests can stand in small fakes for the real producers.
    """
    spec = config.spec
    steps = list(steps if steps is not None else default_steps(config))
    config.out_dir.mkdir(parents=True, exist_ok=True)
    run = ScorecardRun(config, spec.label)
    started = time.monotonic()
    with ExitStack() as stack:
        if spec.command is not None:
            with open_target(spec):  # fail fast, in the server's own words, if it cannot start
                pass
            handle = None
        else:
            handle = stack.enter_context(open_target(spec))
        for step in steps:
            on_start(step)
            prefix = tools[step.tool] if tools is not None and step.tool in tools else resolve_tool(step.tool)
            try:
                outcome = run_step(step, prefix, _target_args(spec, handle), config.out_dir,
                                   functools.partial(on_output, step))
            except KeyboardInterrupt:
                # Ctrl-C or SIGTERM (see reference.signals): run_step has stopped the step's
                # group; leaving the ExitStack stops our server; the caller reports what ran.
                run.interrupted = f"interrupted during the step {step.title!r}"
                break
            if handle is not None and not handle.is_alive():
                outcome.target_note = _recover(handle)
            run.outcomes.append(outcome)
            on_done(outcome)
    run.duration_s = time.monotonic() - started
    return run


def _recover(handle: SpawnedServer | ExternalServer) -> str:
    """Say how the shared target died; restart it when it is ours so later steps can run."""
    note = handle.describe_exit() or "the server stopped accepting connections"
    if isinstance(handle, SpawnedServer):
        try:
            handle.restart()
            note += f"; restarted it on {handle.address[0]}:{handle.address[1]} for the next step"
        except TargetError as exc:
            note += f"; restarting it failed: {exc}"
    return note
