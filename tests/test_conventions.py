"""Conventions a user meets at once, held for every console script of the package.

The scripts are read from the installed package's entry points, so a new one is
checked without being listed here: ``--version`` prints ``PROG VERSION`` from the
package metadata and exits 0; ``--help`` fits an 80-column terminal; a bad option
is one line on stderr and exit status 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata

import pytest

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


def test_every_documented_script_is_an_entry_point() -> None:
    assert set(SCRIPTS) == {"chat-server", "chat-client", "chat-swarm", "chat-load", "chat-report",
                            "chat-conformance"}


@pytest.mark.parametrize("script", SCRIPTS)
def test_version_comes_from_the_package_metadata(script: str) -> None:
    result = run([script, "--version"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{script} {package_version()}"
    assert package_version() != "unknown"


@pytest.mark.parametrize("argv", [[s] for s in SCRIPTS]
                         + [[s, sub] for s, subs in SUBCOMMANDS.items() for sub in subs],
                         ids=" ".join)
def test_help_fits_80_columns(argv: list[str]) -> None:
    result = run([*argv, "--help"])
    assert result.returncode == 0, result.stderr
    wide = [line for line in result.stdout.splitlines() if len(line) > 80]
    assert not wide, "\n".join(wide)


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_bad_option_is_one_line_and_exit_2(script: str) -> None:
    result = run([script, "--no-such-option-anywhere"])
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
