"""``chat-conformance``: judge a chat server against PROTOCOL.md from the command line.

    chat-conformance                                  # the embedded reference server
    chat-conformance --server 127.0.0.1:1234          # a server that is already running
    chat-conformance --server-cmd 'python3 myserver.py {port}' --json out.json
    chat-conformance --profile dm,history --server-cmd '...'   # also judge the claimed profiles

The console script is a thin mapping onto ``pytest --pyargs conformance``
(the suite is a pytest plugin, ``conformance.plugin``): ``--server`` becomes
``--chat-server``, ``--strict`` becomes ``--chat-strict``, case IDs and globs
become ``--chat-case``, and ``-k``, ``-v`` and ``--junitxml`` pass straight
through.  The target options are the shared ones from
:func:`reference.target.add_target_arguments`.

Exit status: 0 no MUST failed (with --strict: no SHOULD either); 1 a case
failed or the harness erred; 2 bad usage or no case selected; 3 the target
server is dead or could not be started; 4 pytest itself failed; 130 Ctrl-C (SIGINT),
143 SIGTERM: the servers it started are stopped and the JSON says the run is incomplete.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from conformance.options import add_suite_options
from conformance.plugin import STATE_KEY, SuiteState
from conformance.verdicts import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NO_CASES,
    EXIT_OK,
    EXIT_TARGET,
    build_document,
    summarise,
)
from reference.console import tolerate_unencodable
from reference.signals import terminate_as_interrupt
from reference.target import (
    TARGET_OPTIONS,
    ExternalServer,
    SpawnedServer,
    TargetError,
    TargetSpec,
    add_target_arguments,
    spec_from_args,
)
from reference.version import add_version_argument
from reports.results import write_document

__all__ = ["build_parser", "main", "pytest_args"]

PACKAGE_DIR = Path(__file__).resolve().parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chat-conformance",
        description="Judge a 10-byte-header chat server against PROTOCOL.md. Without --server or "
                    "--server-cmd the embedded reference server is judged (it must pass).",
        epilog="exit status: 0 no MUST failed (with --strict: no SHOULD either); 1 a case failed; "
               "2 bad usage; 3 the target server is dead or could not be started")
    add_version_argument(parser)
    parser.add_argument("cases", nargs="*", metavar="CASE",
                        help="case IDs or globs to run, e.g. 'relay.basic[*]' frame.large-message "
                             "(default: all); see --list")
    add_target_arguments(parser)
    suite = parser.add_argument_group("suite")
    add_suite_options(suite.add_argument)
    suite.add_argument("--junitxml", metavar="FILE", default=None,
                       help="also write a JUnit XML report for CI test reporters")
    suite.add_argument("-k", metavar="EXPR", dest="keyword", default=None,
                       help="pytest -k expression over case IDs and requirement IDs, "
                            "e.g. 'relay or FRAME-3'")
    suite.add_argument("-v", "--verbose", action="count", default=0,
                       help="one line per case (pytest's verbose output), and every failed case's "
                            "wire transcript in the report (as --transcripts)")
    return parser


def pytest_args(args: argparse.Namespace) -> list[str]:
    """The pytest command line that runs the suite as ``args`` asks."""
    out = ["--pyargs", "conformance",
           # Run the same way from any directory: ignore the caller's pytest configuration
           # and caches, and never pick up tests of the caller's project.
           "-c", os.devnull, "--rootdir", str(PACKAGE_DIR.parent), "-p", "no:cacheprovider",
           # pytest-benchmark would create .benchmarks/ in the caller's directory.
           "-p", "no:benchmark",
           # An installed (not editable) chat-harness has its packages marked for assertion
           # rewriting as a pytest11 plugin's distribution, but this script has imported them
           # already; the cases are still rewritten (imported later), so the warning is noise.
           "-W", "ignore::pytest.PytestAssertRewriteWarning",
           "-o", "python_files=test_*.py", "-o", "junit_suite_name=chat-conformance",
           "--chat-timeout", str(args.timeout), "--chat-case-timeout", str(args.case_timeout),
           "--chat-patience", str(args.patience), "--chat-room-size", str(args.room_size)]
    for name, _ in TARGET_OPTIONS:  # --server etc. become the plugin's --chat-server etc.
        value = getattr(args, name.replace("-", "_"))
        if value is not None and value != "":
            out += [f"--chat-{name}", str(value)]
    if args.profile:
        out += ["--chat-profile", ",".join(sorted(args.profile))]
    if args.strict:
        out.append("--chat-strict")
    if args.json:
        out += ["--chat-json", args.json]
    if args.no_preflight:
        out.append("--chat-no-preflight")
    if args.expectations:
        out += ["--chat-expectations", args.expectations]
    if args.transcripts:
        out.append("--chat-transcripts")
    if args.junitxml:
        out += ["--junitxml", args.junitxml]
    if args.keyword:
        out += ["-k", args.keyword]
    for pattern in args.cases:
        out += ["--chat-case", pattern]
    if args.list:
        # Only the list on stdout: no session header, no "no tests ran" line.
        out += ["--chat-list", "-p", "no:terminal", "-s"]
    else:
        # -rN --tb=no: the report's root causes and one line per case replace pytest's short
        # summary and failure sections; --transcripts or -v adds every transcript to the report.
        out += ["-rN", "--tb=no", *(["-v"] * args.verbose if args.verbose else ["-q"])]
    return out


class _Session:
    """Keeps the session's config so the exit status can be read after pytest.main."""

    def __init__(self) -> None:
        self.config: pytest.Config | None = None

    def pytest_configure(self, config: pytest.Config) -> None:
        self.config = config

    def state(self) -> SuiteState | None:
        return self.config.stash.get(STATE_KEY, None) if self.config is not None else None


def _exit_status(pytest_status: int | pytest.ExitCode, state: SuiteState | None) -> int:
    if state is not None and state.document is not None:
        return int(state.document["summary"]["exit_status"])
    if state is not None and state.target_error is not None:
        return EXIT_TARGET
    return {
        pytest.ExitCode.OK: EXIT_OK,
        pytest.ExitCode.TESTS_FAILED: EXIT_FAILED,
        pytest.ExitCode.INTERRUPTED: EXIT_INTERRUPTED,
        pytest.ExitCode.USAGE_ERROR: EXIT_NO_CASES,
        pytest.ExitCode.NO_TESTS_COLLECTED: EXIT_NO_CASES,
        # pytest itself failed: a target that broke it was caught above (3); otherwise the
        # suite erred, a finding about the harness, never a pass (its traceback is above)
    }.get(pytest.ExitCode(int(pytest_status)), EXIT_FAILED)


def target_problem(spec: TargetSpec) -> str | None:
    """Why the target cannot be judged at all (dead, or its command fails), or None.

    Checked before pytest starts so that the answer is one clear line; a
    ``--server-cmd`` is started once and stopped again to find out.
    """
    try:
        if spec.server is not None:
            ExternalServer(spec.server).check(spec.start_timeout)
        elif spec.command is not None:
            trial = SpawnedServer(spec.command, host=spec.host, start_timeout=spec.start_timeout)
            try:
                trial.start()
            finally:
                trial.close()
    except TargetError as exc:
        return f"target unavailable: {exc}"
    return None


def _write_target_error(path: str, spec: TargetSpec, problem: str, strict: bool) -> None:
    summary = summarise([], strict=strict, started=time.monotonic(), dialects=[],
                        status=EXIT_TARGET, target_error=problem)
    write_document(path, build_document([], summary, label=spec.label, address=spec.server,
                                        command=spec.command))


def main(argv: Sequence[str] | None = None) -> int:
    tolerate_unencodable()  # a non-UTF-8 console shows '?' for what it lacks, not a traceback
    parser = build_parser()
    args = parser.parse_args(argv)
    spec = spec_from_args(parser, args)  # a bad --server or --server-cmd: one line, exit 2
    for option in ("json", "junitxml"):
        path = getattr(args, option)
        if path is not None and Path(path).is_dir():
            parser.error(f"--{option} {path}: is a directory, give a file name")
    # SIGTERM (a CI job cancelled, the scorecard's deadline) ends the run like Ctrl-C, so
    # pytest tears the fixtures down and a spawned server in its own group is stopped too;
    # the JSON, if asked for, is written with what ran, marked incomplete.
    with terminate_as_interrupt() as caught:
        try:
            code = _run(args, spec)
        except KeyboardInterrupt:  # before or after pytest's own handling
            code = EXIT_INTERRUPTED
        if code == EXIT_INTERRUPTED:
            print(f"chat-conformance: {caught.words}", file=sys.stderr)
            return caught.exit_status
        return code


def _run(args: argparse.Namespace, spec: TargetSpec) -> int:
    if not args.list:
        problem = target_problem(spec)
        if problem is not None:
            print(f"chat-conformance: {problem}", file=sys.stderr)
            if args.json:
                _write_target_error(args.json, spec, problem, args.strict)
            return EXIT_TARGET
    session = _Session()
    status = pytest.main(pytest_args(args), plugins=[session])
    state = session.state()
    code = _exit_status(status, state)
    if code == EXIT_TARGET and state is not None and state.target_error:
        print(f"chat-conformance: {state.target_error}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
