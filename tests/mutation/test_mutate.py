"""The mutation tool's own checks (fast): its mutants are numbered, valid, deterministic and one change each.

Running the mutants is ``tox -e mutation`` (minutes); these only prove the tool
is sound, so that its score means something.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mutate  # noqa: E402  (a script next to this file, not a package)

SOURCE = mutate.SOURCE.read_text()
FOUND = mutate.mutants(SOURCE)


def test_every_kind_of_mutation_is_generated() -> None:
    kinds = {m.kind for m in FOUND}
    assert {"operator", "comparison", "constant", "slice", "delete", "branches", "negate",
            "boolop"} <= kinds
    assert [m.number for m in FOUND] == list(range(len(FOUND)))
    assert mutate.mutants(SOURCE) == FOUND  # same source, same numbering


@pytest.mark.parametrize("number", range(0, len(FOUND), max(1, len(FOUND) // 20)))
def test_a_mutant_compiles_and_differs_in_one_place(number: int) -> None:
    mutated = mutate.mutate(SOURCE, number)
    compile(mutated, "mutant.py", "exec")
    change = mutate.diff(SOURCE, mutated)
    assert change, f"mutant {number} changes nothing"
    assert len([h for h in change.splitlines() if h.startswith("@@")]) == 1, change
    assert mutate.mutate(SOURCE, number) == mutated


def test_mutations_do_what_they_say() -> None:
    code = "def f(a, b):\n    if a < b:\n        return a + 1\n    return b[1:]\n"
    found = mutate.mutants(code)
    by_kind = {m.kind: m.number for m in found}
    assert "a <= b" in mutate.mutate(code, by_kind["comparison"])
    assert "a - 1" in mutate.mutate(code, by_kind["operator"])
    assert "b[1 + 1:]" in mutate.mutate(code, by_kind["slice"])
    assert "if not a < b" in mutate.mutate(code, by_kind["negate"])
    assert "return a + 1" not in mutate.mutate(code, by_kind["delete"])
    assert ast.parse(mutate.mutate(code, by_kind["constant"]))


def test_log_calls_are_marked_equivalent() -> None:
    code = "def f(x):\n    log.info('got %d', x + 1)\n    return x\n"
    found = mutate.mutants(code)
    assert [m.log_only for m in found if m.kind in ("operator", "constant")] == [True, True]
    assert not next(m for m in found if m.kind == "delete" and m.line == 3).log_only


def test_the_sample_is_seeded() -> None:
    assert mutate.choose(300, 40, seed=11) == mutate.choose(300, 40, seed=11)
    assert mutate.choose(300, 40, seed=11) != mutate.choose(300, 40, seed=12)
    assert len(set(mutate.choose(300, 40, seed=11))) == 40
    assert mutate.choose(10, None, seed=1) == list(range(10)) == mutate.choose(10, 50, seed=1)
