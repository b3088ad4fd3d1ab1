"""Shared by the classroom client's tests.

A Tk root that a finished test left in a reference cycle is freed by whichever
thread next runs the garbage collector.  If that is a later test's network
thread (reference/classroom/session.py reads and writes in threads), Tcl deletes
its interpreter from the wrong thread and aborts the whole process ("Fatal
Python error: Aborted", seen once in CI inside
test_history_keeps_a_reader_who_scrolled_up_in_place).  Collecting in the main
thread after every test frees each test's Tk objects where they were made.
(The application itself makes one root per process, so it never meets this.)
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _free_tk_objects_in_the_main_thread() -> Iterator[None]:
    yield
    gc.collect()
