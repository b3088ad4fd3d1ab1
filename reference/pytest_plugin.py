"""pytest plugin: the ``--chat-server`` / ``--chat-server-cmd`` target options.

Registered once through the ``pytest11`` entry point (name ``chat-target``),
so the conformance suite, the benchmarks and the project's own tests all pick
their target server the same way:

* nothing given: the embedded reference server, spawned once per session;
* ``--chat-server HOST:PORT``: a running server;
* ``--chat-server-cmd 'python3 myserver.py {port}'``: a command we launch.

Fixtures: ``chat_target_spec`` (the parsed :class:`TargetSpec`) and
``chat_target`` (a started handle, session scoped, cleaned up at the end).
Options are prefixed ``--chat-`` because locust's pytest plugin owns ``--host``.
Nothing here starts a server at import time.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reference import exit_codes
from reference.target import (
    TARGET_OPTIONS,
    ExternalServer,
    SpawnedServer,
    TargetError,
    TargetSpec,
    open_target,
)

_SPEC_KEY = pytest.StashKey[TargetSpec]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chat-target", "chat-harness target server")
    for name, options in TARGET_OPTIONS:  # the console scripts' options, prefixed --chat-
        group.addoption(f"--chat-{name}", **options)


def pytest_configure(config: pytest.Config) -> None:
    try:
        spec = TargetSpec.parse(server=config.getoption("chat_server"),
                                command=config.getoption("chat_server_cmd"),
                                start_timeout=config.getoption("chat_start_timeout"))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_SPEC_KEY] = spec


def target_spec(config: pytest.Config) -> TargetSpec:
    """The session's target, as parsed from the command line."""
    return config.stash[_SPEC_KEY]


def set_target_spec(config: pytest.Config, spec: TargetSpec) -> None:
    """Change the session's target before it starts (the conformance suite passes the
    embedded reference the profiles it is asked to judge)."""
    config.stash[_SPEC_KEY] = spec


@pytest.fixture(scope="session")
def chat_target_spec(pytestconfig: pytest.Config) -> TargetSpec:
    return target_spec(pytestconfig)


@pytest.fixture(scope="session")
def chat_target(chat_target_spec: TargetSpec) -> Iterator[SpawnedServer | ExternalServer]:
    """The started target server, shared by the whole session."""
    try:
        with open_target(chat_target_spec) as handle:
            yield handle
    except TargetError as exc:
        pytest.exit(f"chat target unavailable: {exc}", returncode=exit_codes.TARGET_UNAVAILABLE)
