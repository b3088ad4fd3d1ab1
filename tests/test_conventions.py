"""Conventions a user meets at once, held for every console script of the package.

The scripts are read from the installed package's entry points, so a new one is
checked without being listed here: ``--version`` prints ``PROG VERSION`` from the
package metadata and exits 0; ``--help`` fits an 80-column terminal; a bad option
is one line on stderr and exit status 2.
"""

from __future__ import annotations

import ast
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from reference import exit_codes
from reference.version import package_version

SCRIPTS = sorted(ep.name for ep in metadata.distribution("chat-harness").entry_points
                 if ep.group == "console_scripts")
SUBCOMMANDS = {"chat-load": ["latency", "limits", "soak", "calibrate"],
               "chat-report": ["show", "html", "compare", "matrix", "scorecard"]}


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    ep = next(ep for ep in metadata.distribution("chat-harness").entry_points
              if ep.group == "console_scripts" and ep.name == argv[0])
    module, func = ep.value.split(":")
    code = f"import sys; sys.argv[0] = {argv[0]!r}; from {module} import {func} as m; sys.exit(m())"
    env = dict(os.environ, COLUMNS="80", LINES="24")
    return subprocess.run([sys.executable, "-c", code, *argv[1:]], capture_output=True, text=True,
                          timeout=60, env=env, stdin=subprocess.DEVNULL)


def ran_as(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The command line ``run`` ran: the script's name, then its arguments."""
    name = re.search(r"sys.argv\[0\] = '([^']+)'", result.args[2])
    assert name, result.args
    return [name[1], *result.args[3:]]


def test_every_documented_script_is_an_entry_point() -> None:
    assert set(SCRIPTS) == {"chat-server", "chat-client", "chat-swarm", "chat-load", "chat-report",
                            "chat-conformance"}


#: The command line each of the three tests below runs, from its parameters.
ARGV_OF: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "test_version_comes_from_the_package_metadata": lambda params: [params["script"], "--version"],
    "test_help_fits_80_columns": lambda params: [*params["argv"], "--help"],
    "test_a_bad_option_is_one_line_and_exit_2": lambda params: [params["script"],
                                                                "--no-such-option-anywhere"],
}


@pytest.fixture(scope="module")
def _started(request: pytest.FixtureRequest) -> Iterator[dict[str, Future[subprocess.CompletedProcess[str]]]]:
    """The runs of every selected test of ARGV_OF, started together on the first one's request.

    Each is a fresh interpreter that mostly starts up, so one after the other they spent
    ~20 s waiting on each other; three at a time the module takes its CPU time over the cores.
    """
    items = [item for item in request.session.items
             if item.module is request.module and getattr(item, "originalname", "") in ARGV_OF]
    with ThreadPoolExecutor(max_workers=3) as pool:
        yield {item.nodeid: pool.submit(run, ARGV_OF[item.originalname](item.callspec.params))  # type: ignore[attr-defined]
               for item in items}


@pytest.fixture
def ran(request: pytest.FixtureRequest,
        _started: dict[str, Future[subprocess.CompletedProcess[str]]]) -> subprocess.CompletedProcess[str]:
    """This test's run of its ARGV_OF command line."""
    return _started[request.node.nodeid].result()


@pytest.mark.parametrize("script", SCRIPTS)
def test_version_comes_from_the_package_metadata(script: str, ran: subprocess.CompletedProcess[str]) -> None:
    result = ran
    assert ran_as(result) == [script, "--version"]
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{script} {package_version()}"
    assert package_version() != "unknown"


@pytest.mark.parametrize("argv", [[s] for s in SCRIPTS]
                         + [[s, sub] for s, subs in SUBCOMMANDS.items() for sub in subs],
                         ids=" ".join)
def test_help_fits_80_columns(argv: list[str], ran: subprocess.CompletedProcess[str]) -> None:
    result = ran
    assert ran_as(result) == [*argv, "--help"]
    assert result.returncode == 0, result.stderr
    wide = [line for line in result.stdout.splitlines() if len(line) > 80]
    assert not wide, "\n".join(wide)


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_bad_option_is_one_line_and_exit_2(script: str, ran: subprocess.CompletedProcess[str]) -> None:
    result = ran
    assert ran_as(result) == [script, "--no-such-option-anywhere"]
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr


# -- exit statuses: every tool x every status ------------------------------------------
# reference/exit_codes.py defines them; docs/conventions.md documents them, tool by tool.
# Each (tool, status) is one of: Run (provoked right here), Elsewhere (a test that
# provokes it, slow or needing a display or a broken server, checked here to exist and
# to assert that status), or Never (the tool has no such outcome; the docs show "—").


@dataclass(frozen=True)
class Run:
    argv: list[str]
    refused_port: bool = False  # append a refused 127.0.0.1 port to the last option
    env: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Elsewhere:
    test: str  # path::function
    asserts: str  # what that test's source says about the status


@dataclass(frozen=True)
class Never:
    why: str


GATE = "bench/compare.py"
STATUSES = (exit_codes.OK, exit_codes.FINDINGS, exit_codes.USAGE, exit_codes.TARGET_UNAVAILABLE,
            exit_codes.INTERRUPTED)
EXIT_TABLE: dict[str, dict[int, Run | Elsewhere | Never]] = {
    "chat-conformance": {
        0: Elsewhere("tests/conformance/test_conformance_servers.py::test_reference_server_passes_everything",
                     "run.status == 0"),
        1: Elsewhere("tests/conformance/test_conformance_servers.py::"
                     "test_hanging_server_still_finishes_with_failures",
                     "run.status == 1"),
        2: Run(["chat-conformance", "-k", "no-such-case-anywhere", "--list"]),
        3: Run(["chat-conformance", "--start-timeout", "0.3", "--server"], refused_port=True),
        130: Elsewhere("tests/test_signals.py::test_chat_conformance", "_assert_clean_end(status"),
    },
    "chat-load": {
        0: Elsewhere("tests/loadtest/test_loadtest_latency.py::"
                     "test_reference_server_delivers_everything_once_in_order",
                     "status == 0"),
        1: Elsewhere("tests/loadtest/test_loadtest_latency.py::test_lossy_server_is_caught", "status == 1"),
        2: Run(["chat-load", "latency", "--clients", "0"]),
        3: Run(["chat-load", "limits", "--start-timeout", "0.3", "--server"], refused_port=True),
        130: Elsewhere("tests/test_signals.py::test_chat_load", "status == expected"),
    },
    "chat-swarm": {
        0: Elsewhere("tests/loadtest/swarm/test_locust_swarm.py::"
                     "test_microsecond_latency_is_the_chat_histogram_not_a_row_under_ms_headers",
                     "returncode == 0"),
        1: Elsewhere("tests/loadtest/swarm/test_locust_swarm.py::"
                     "test_chat_swarm_fails_on_lost_or_reordered_messages",
                     "code == 1"),
        2: Run(["chat-swarm", "--run-time", "forever"]),
        3: Run(["chat-swarm", "--start-timeout", "0.3", "--server"], refused_port=True),
        130: Elsewhere("tests/loadtest/swarm/test_locust_swarm.py::"
                       "test_a_signal_ends_the_swarm_with_locusts_statistics_and_one_line",
                       "returncode == status"),
    },
    "chat-report": {
        0: Elsewhere("tests/reports/test_reports_compare.py::"
                     "test_a_uniformly_slower_machine_is_not_a_bench_regression",
                     "== 0"),
        1: Elsewhere("tests/reports/test_reports_compare.py::"
                     "test_one_benchmark_three_times_slower_is_a_regression",
                     "== 1"),
        2: Run(["chat-report", "show", "/no/such/results.json"]),
        3: Run(["chat-report", "scorecard", "--start-timeout", "0.3", "--server"], refused_port=True),
        130: Elsewhere("tests/test_signals.py::test_chat_report_scorecard", "_assert_clean_end(status"),
    },
    "chat-server": {
        # A server told to stop (SIGINT, SIGTERM) ends with 0: it has found nothing.
        0: Elsewhere("tests/test_signals.py::test_chat_server", "status == 0"),
        1: Never("a server judges nothing"),
        2: Run(["chat-server", "--port", "70000"]),
        3: Run(["chat-server", "--port"], refused_port=True),  # in use: the target would not start
        130: Never("a signal is how a server is told to stop: 0"),
    },
    "chat-client": {
        0: Elsewhere("tests/reference/classroom/test_client_tk_xvfb.py::"
                     "test_demo_is_one_command_and_cleans_up_on_sigterm",
                     "returncode == 0"),
        1: Never("a chat window judges nothing"),
        2: Run(["chat-client"], env={"DISPLAY": None, "WAYLAND_DISPLAY": None}),  # run where it cannot run
        3: Elsewhere("tests/test_conventions.py::test_chat_client_demo_server_that_would_not_start_is_3",
                     "TARGET_UNAVAILABLE"),
        130: Never("a signal closes the window, the way it is meant to end: 0"),
    },
    GATE: {
        0: Elsewhere("tests/bench/test_bench_gate.py::test_unchanged_code_on_a_uniformly_slower_run_passes",
                     "returncode == 0"),
        1: Elsewhere("tests/bench/test_bench_gate.py::"
                     "test_injected_slowdown_fails_the_gate", "returncode == 1"),
        2: Run([GATE, "/no/such/baseline.json", "/no/such/current.json"]),
        3: Never("compares files; it reaches no server (its confirmation reruns are pytest runs)"),
        130: Elsewhere("tests/test_conventions.py::test_bench_gate_interrupted_is_one_line_and_130",
                       "INTERRUPTED"),
    },
}
ROOT = Path(__file__).resolve().parent.parent


def sources_matching(matches: Callable[[str], object]) -> list[str]:
    """The package modules (not the tests) whose text ``matches``, as sorted relative paths."""
    paths = [path for package in ("reference", "conformance", "loadtest", "reports", "bench")
             for path in (ROOT / package).rglob("*.py")]
    return sorted(str(path.relative_to(ROOT)) for path in paths if matches(path.read_text(encoding="utf-8")))


def run_tool(case: Run, port: int) -> subprocess.CompletedProcess[str]:
    argv = [*case.argv, f"127.0.0.1:{port}" if case.argv[-1] == "--server" else str(port)] \
        if case.refused_port else case.argv
    if argv[0] == GATE:
        env = {k: v for k, v in os.environ.items() if case.env.get(k, v) is not None}
        return subprocess.run([sys.executable, str(ROOT / GATE), *argv[1:]], capture_output=True,
                              text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    with pytest.MonkeyPatch.context() as mp:
        for name, value in case.env.items():
            if value is None:
                mp.delenv(name, raising=False)
            else:
                mp.setenv(name, value)
        return run(argv)


def test_every_tool_accounts_for_every_status() -> None:
    assert set(EXIT_TABLE) == {*SCRIPTS, GATE}
    for tool, row in EXIT_TABLE.items():
        assert tuple(row) == STATUSES, tool


def cases_of(kind: type) -> list[tuple[str, int]]:
    return [(tool, status) for tool, row in EXIT_TABLE.items() for status, case in row.items()
            if isinstance(case, kind)]


RUNS = cases_of(Run)


@pytest.mark.parametrize(("tool", "status"), RUNS, ids=[f"{t} {s}" for t, s in RUNS])
def test_exit_status(tool: str, status: int) -> None:
    case = EXIT_TABLE[tool][status]
    assert isinstance(case, Run)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        if case.argv[-1] == "--port":
            holder.listen()  # in use: chat-server cannot listen there
        # otherwise bound but not listening: connections are refused at once
        result = run_tool(case, holder.getsockname()[1])
    assert result.returncode == status, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
    assert lines, "no word of why"
    if status == exit_codes.TARGET_UNAVAILABLE:  # one line that says why, naming the port
        said = result.stderr + result.stdout
        assert any(word in said for word in ("unavailable", "cannot listen", "refused")), said


ELSEWHERE = cases_of(Elsewhere)


@pytest.mark.parametrize(("tool", "status"), ELSEWHERE, ids=[f"{t} {s}" for t, s in ELSEWHERE])
def test_exit_status_is_provoked_by_a_test_elsewhere(tool: str, status: int) -> None:
    """The pointer is not stale: the test exists and asserts the status (it runs in its own lane)."""
    case = EXIT_TABLE[tool][status]
    assert isinstance(case, Elsewhere)
    path, function = case.test.split("::")
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    found = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == function]
    assert found, f"{case.test} is gone"
    source = ast.get_source_segment((ROOT / path).read_text(encoding="utf-8"), found[0]) or ""
    assert case.asserts in source, f"{case.test} no longer says {case.asserts!r}"


def _docs_rows() -> dict[str, list[str]]:
    """docs/conventions.md's tool-by-tool table: tool -> its cells for 0, 1, 2, 3, 130."""
    text = (ROOT / "docs" / "conventions.md").read_text(encoding="utf-8")
    table = text.split("### Tool by tool", 1)[1]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0].startswith("`"):
            rows[cells[0].split("`")[1]] = cells[1:]
    return rows


def test_docs_table_says_what_the_code_does() -> None:
    rows = _docs_rows()
    for tool, row in EXIT_TABLE.items():
        assert tool in rows, f"docs/conventions.md has no row for {tool}"
        for cell, (status, case) in zip(rows[tool], row.items(), strict=True):
            assert cell.startswith("—") == isinstance(case, Never), (tool, status, cell)


def test_the_statuses_are_defined_once() -> None:
    """No tool spells a status as a bare number: each comes from reference/exit_codes.py."""
    mains = {"reference/server.py", "reference/classroom/app.py", "conformance/cli.py",
             "conformance/verdicts.py", "loadtest/cli.py", "loadtest/swarm/cli.py", "reports/cli.py", GATE}
    for name in mains:
        text = (ROOT / name).read_text(encoding="utf-8")
        assert "exit_codes" in text or "from conformance.verdicts import (\n    EXIT_" in text, name
        bare = [line for line in text.splitlines()
                if re.search(r"\breturn\s+([0-4]|1[23][0-9])\s*(#.*)?$", line) or "EXIT_INTERNAL" in line]
        assert not bare, f"{name}: {bare}"


def test_conformance_internal_error_is_findings_or_target() -> None:
    """pytest itself failing is never a status of its own: 3 if the target broke it, else 1."""
    from conformance import cli as conformance_cli

    class State:
        document = None
        target_error: str | None = None

    assert conformance_cli._exit_status(pytest.ExitCode.INTERNAL_ERROR, None) == exit_codes.FINDINGS
    broken = State()
    broken.target_error = "target unavailable: the server died"
    assert conformance_cli._exit_status(pytest.ExitCode.INTERNAL_ERROR, broken) == (  # type: ignore[arg-type]
        exit_codes.TARGET_UNAVAILABLE)


def test_chat_client_demo_server_that_would_not_start_is_3(monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from reference.classroom import app
    from reference.target import TargetError

    class Root:
        destroyed = False

        def winfo_exists(self) -> bool:
            return not self.destroyed

        def destroy(self) -> None:
            self.destroyed = True

    root = Root()

    def refuse(_spec: object) -> None:
        raise TargetError("the embedded server would not start")

    monkeypatch.setattr(app, "_open_root", lambda: root)
    monkeypatch.setattr(app, "open_target", refuse)
    config = app.config_from_args(app.build_parser(), app.build_parser().parse_args(["--demo"]))
    assert app.run(config) == exit_codes.TARGET_UNAVAILABLE
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("chat-client: the classroom demo failed") and root.destroyed


def test_bench_gate_interrupted_is_one_line_and_130(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    sys.path.insert(0, str(ROOT))
    monkeypatch.setattr(sys, "path", sys.path)
    from bench import compare

    def interrupted(*_args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(compare, "_gate", interrupted)
    assert compare.main(["a.json", "b.json"]) == exit_codes.INTERRUPTED
    (line,) = capsys.readouterr().err.splitlines()
    assert line == "bench/compare.py: interrupted by SIGINT: stopped what it started; nothing written"


def test_one_list_of_percentile_keys() -> None:
    """reports.results.PERCENTILES is the only place the percentiles are listed."""
    listing = re.compile(r"""["']p50["'].{0,40}["']p90["']""")
    found = sources_matching(listing.search)
    assert found == ["reports/results.py"]


def test_target_options_are_declared_once() -> None:
    """The target options (--server ... --tls-insecure) and their --chat- twins: TARGET_OPTIONS only."""
    # --tls, --tls-ca and --tls-insecure too, but for chat-client's own (its connection, not a target).
    options = "(server|server-cmd|start-timeout|tls|tls-ca|tls-insecure)"
    declared = re.compile(r"""add(_argument|option)\(\s*["']--(chat-)?""" + options + """["']""")
    found = sources_matching(declared.search)
    assert found == ["reference/classroom/app.py"]
    from reference.target import TARGET_OPTIONS
    assert [name for name, _ in TARGET_OPTIONS] == ["server", "server-cmd", "start-timeout", "tls",
                                                     "tls-ca", "tls-insecure"]


def test_argparse_value_types_live_in_one_module() -> None:
    """Every argparse ``type`` that can refuse a value is in reference/cli_args.py."""
    found = sources_matching(lambda text: "raise argparse.ArgumentTypeError" in text)
    assert found == ["reference/cli_args.py"]


def test_reports_and_baselines_are_written_atomically() -> None:
    """Every file the harness writes for a reader (results, reports, baselines) goes through
    reports.results.write_text_atomic; the only other writes are logs streamed as they come: a
    spawned server's output (reference/target.py) and a scorecard step's log (reports/scorecard.py).
    Before issue 14's fix, bench/compare.py and reports/html.py wrote with Path.write_text."""
    writes = re.compile(r"""\.write_(text|bytes)\(|\bopen\([^)]*["'][wax]b?["']|json\.dump\(""")
    assert sources_matching(writes.search) == ["reference/target.py", "reports/scorecard.py"]
