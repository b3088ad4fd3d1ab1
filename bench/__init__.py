"""Benchmarks for chat-harness (pytest-benchmark), run from a checkout: ``pytest bench``.

A package only so its modules import as ``bench.*`` without clashing with
``tests/``; it is not installed (pyproject lists the installed packages).
"""
