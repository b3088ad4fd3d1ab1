"""Shared by every test: the temporary files of a test run stay inside pytest's own folder.

A spawned server's log folder is kept when a crash report names it, and the
self-tests crash zoo servers on purpose, hundreds of times a run.  Pointing
``TMPDIR`` (for the processes the tests start) and ``tempfile.tempdir`` (for
this one) into pytest's base temporary folder keeps those folders where pytest
already keeps its last three runs' files, instead of piling up in ``/tmp``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _temporary_files_under_pytest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    folder = tmp_path_factory.mktemp("tmpdir")
    saved_env, saved_module = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = str(folder)
    tempfile.tempdir = str(folder)
    yield
    tempfile.tempdir = saved_module
    if saved_env is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = saved_env
