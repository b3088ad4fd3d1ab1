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


def test_ids_are_unique_and_survive_edits_elsewhere() -> None:
    ids = [m.id for m in FOUND]
    assert len(set(ids)) == len(ids)
    # A function added at the top moves every line and renumbers every mutant, but each
    # mutant of the old code keeps its id: a reviewed.toml entry still finds its mutant.
    moved = "def added(x):\n    return x + 1\n\n\n" + SOURCE
    moved_ids = [m.id for m in mutate.mutants(moved)]
    assert moved_ids[-len(ids):] == ids
    # Nor does a comment or other spacing change the id of its statement's mutants.
    code = "def f(a, b):\n    return a + b\n"
    recommented = "def f(a, b):\n    return a+b  # why\n"
    assert [m.id for m in mutate.mutants(code)] == [m.id for m in mutate.mutants(recommented)]


def test_an_id_names_function_kind_and_change() -> None:
    code = "def f(a, b):\n    if a < b:\n        return a + 1\n    return b[1:]\n"
    found = mutate.mutants(code)
    ids = [m.id for m in found]
    assert all(m.id.startswith(f"f:{m.kind}") for m in found)
    assert "f:operator:Add>Sub@" in ids[found.index(next(m for m in found if m.kind == "operator"))]
    # Another text at the same site is another mutant, and so another id.
    other = [m.id for m in mutate.mutants(code.replace("a + 1", "a + 2"))]
    changed = [i for i, o in zip(ids, other, strict=True) if i != o]
    assert changed and len(changed) < len(ids)


def test_reach_is_the_statement_a_tracer_reports() -> None:
    code = "def f(a):\n    x = (a +\n         1)\n    if (a <\n            x):\n        return x\n"
    by_kind = {m.kind: m for m in mutate.mutants(code)}
    assert by_kind["operator"].reach == (2, 3)      # an expression: its whole statement
    assert by_kind["comparison"].reach == (4, 5)    # an if's test: its header, not its body
    assert by_kind["operator"].scope == (1, 6)


def test_a_mutant_is_judged_in_the_modes_that_reach_it() -> None:
    m = mutate.Mutant(0, "delete", 10, "f", False, (10, 10), (5, 20))
    reached = {"plain": {5, 10}, "profile": {5, 10}, "tls": {5, 10, 12}}
    # tls reaches a line of f that plain does not (an ``if tls:`` branch): judged there too.
    assert mutate.modes_for(m, reached) == ["plain", "tls"]
    only_profile = mutate.Mutant(0, "delete", 30, "g", False, (30, 30), (25, 40))
    assert mutate.modes_for(only_profile, {"plain": {25}, "profile": {25, 30}, "tls": {25}}) == [
        "profile"]
    assert mutate.modes_for(only_profile, {"plain": set(), "profile": set(), "tls": set()}) == []


def test_reviews_need_a_known_verdict_and_a_reason(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[[mutant]]\nid = "f:delete:0123456789"\nverdict = "equivalent"\n'
                    'reason = "a log label"\n')
    assert mutate.load_reviews(good)["f:delete:0123456789"].reason == "a log label"
    bad = tmp_path / "bad.toml"
    bad.write_text('[[mutant]]\nid = "f:delete:0123456789"\nverdict = "fine"\nreason = "x"\n')
    with pytest.raises(SystemExit):
        mutate.load_reviews(bad)


def test_the_committed_reviews_load_and_name_todays_mutants() -> None:
    reviews = mutate.load_reviews()
    known = {m.id for m in FOUND}
    # reference/server.py moves; a review whose mutant is gone is reported by mutate.py, but
    # most must still match, or the list has gone stale and the score means little.
    assert reviews and len(set(reviews) & known) >= len(reviews) // 2
