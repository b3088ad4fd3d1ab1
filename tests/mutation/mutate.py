"""The conformance suite's own power, measured: a mutation score over reference/server.py.

    python tests/mutation/mutate.py --sample 60          # tox -e mutation
    python tests/mutation/mutate.py --list               # every mutant, no run

A small AST mutator (mutmut and cosmic-ray drive a test suite that imports
the code under test; ours judges a server in another process, through
``--server-cmd``) makes one change at a time to a copy of the reference
server -- an operator or comparison swapped, a constant changed, a slice
bound moved by one, a statement deleted, an ``if``'s branches swapped or its
test negated -- and runs ``chat-conformance`` against each mutant:

* killed     the suite failed it (exit status 1, or 3 when it does not start); the
             suite runs with ``--strict``, so a broken SHOULD is noticed too;
* survived   the suite passed it: its diff is printed, to be killed by a new case
             or explained (see the README's mutation score);
* timed-out  the run passed its time bound and was stopped (counted as killed);
* equivalent the change can only reach the server's log (a ``log.*`` call), which
             no client sees; not run.

The mutants are numbered in source order; ``--sample N`` takes N of them with
a seeded random choice (``--seed``), so a run is repeatable.  It lives with the
self-tests, not in a package: it tests the tests, and nothing imports it.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from conformance.cli import build_parser, pytest_args
from reference.process_group import join_command, process_group_start, stop_process_group

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "reference" / "server.py"
RUN_TIMEOUT = 150.0
KILLED, SURVIVED, TIMED_OUT, EQUIVALENT = "killed", "survived", "timed-out", "equivalent"

_SWAP_BINOP: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.FloorDiv, ast.FloorDiv: ast.Mult,
    ast.Div: ast.Mult, ast.Mod: ast.FloorDiv, ast.BitOr: ast.BitAnd, ast.BitAnd: ast.BitOr,
    ast.LShift: ast.RShift, ast.RShift: ast.LShift}
_SWAP_CMP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}


@dataclass(frozen=True)
class Mutant:
    number: int
    kind: str         # operator, comparison, constant, slice, delete, branches, negate, boolop
    line: int
    where: str        # the enclosing function
    log_only: bool    # inside a log.* call: only the log can change


def _is_log_call(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "log")


def _is_docstring(node: ast.AST) -> bool:
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str))


class _Sites(ast.NodeTransformer):
    """Walks the tree in source order, numbering each possible mutation; applies number ``target``."""

    def __init__(self, target: int | None = None) -> None:
        self.target = target
        self.found: list[Mutant] = []
        self._where = "<module>"
        self._log_depth = 0
        self._depth = 0  # functions we are in: only their statements may be deleted

    def _site(self, kind: str, node: ast.AST) -> bool:
        """Count a site; True when it is the one to apply."""
        number = len(self.found)
        self.found.append(Mutant(number, kind, getattr(node, "lineno", 0), self._where,
                                 self._log_depth > 0))
        return number == self.target

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        outer, self._where = self._where, node.name
        if node.name in ("build_parser",):  # help texts and defaults of the command line
            self._where = outer
            return node
        self._depth += 1
        returns, node.returns = node.returns, None  # annotations are never evaluated here
        result = self.generic_visit(node)
        node.returns = returns
        self._depth -= 1
        self._where = outer
        return result

    def visit_arg(self, node: ast.arg) -> ast.AST:
        return node  # only an annotation

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        if node.value is not None:
            node.value = self.visit(node.value)
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        log = _is_log_call(node)
        self._log_depth += log
        result = self.generic_visit(node)
        self._log_depth -= log
        return result

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        swap = _SWAP_BINOP.get(type(node.op))
        if swap is not None and self._site("operator", node):
            node.op = swap()
        return node

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        self.generic_visit(node)
        swap = _SWAP_BINOP.get(type(node.op))
        if swap is not None and self._site("operator", node):
            node.op = swap()
        return node

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        for i, op in enumerate(node.ops):
            swap = _SWAP_CMP.get(type(op))
            if swap is not None and self._site("comparison", node):
                node.ops[i] = swap()
        return node

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        self.generic_visit(node)
        if self._site("boolop", node):
            node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        value = node.value
        if isinstance(value, bool):
            if self._site("constant", node):
                return ast.copy_location(ast.Constant(not value), node)
        elif isinstance(value, int):
            if self._site("constant", node):
                return ast.copy_location(ast.Constant(value + 1 if value != 1 else 0), node)
        return node

    def visit_Slice(self, node: ast.Slice) -> ast.AST:
        self.generic_visit(node)
        for bound in ("lower", "upper"):
            expr = getattr(node, bound)
            if expr is not None and self._site("slice", node):
                setattr(node, bound, ast.BinOp(expr, ast.Add(), ast.Constant(1)))
        return node

    def visit_If(self, node: ast.If) -> ast.AST:
        self.generic_visit(node)
        if node.orelse and self._site("branches", node):
            node.body, node.orelse = node.orelse, node.body
        elif self._site("negate", node):
            node.test = ast.UnaryOp(ast.Not(), node.test)
        return node

    def generic_visit(self, node: ast.AST) -> ast.AST:
        # Statement deletion: each statement of a body may become ``pass``.
        for name in ("body", "orelse", "finalbody"):
            body = getattr(node, name, None)
            if not isinstance(body, list) or not self._depth:
                continue
            for i, stmt in enumerate(body):
                if not isinstance(stmt, ast.stmt) or isinstance(stmt, ast.Pass) or _is_docstring(stmt):
                    continue
                log = isinstance(stmt, ast.Expr) and _is_log_call(stmt.value)
                self._log_depth += log
                hit = self._site("delete", stmt)
                self._log_depth -= log
                if hit:
                    body[i] = ast.copy_location(ast.Pass(), stmt)
        return super().generic_visit(node)


def mutants(source: str) -> list[Mutant]:
    """Every mutant of ``source``, in source order."""
    sites = _Sites()
    sites.visit(ast.parse(source))
    return sites.found


def mutate(source: str, number: int) -> str:
    """``source`` (normalised by ast.unparse) with mutation ``number`` applied."""
    tree = ast.parse(source)
    _Sites(number).visit(tree)
    return ast.unparse(ast.fix_missing_locations(tree))


def diff(source: str, mutated: str) -> str:
    original = ast.unparse(ast.parse(source)).splitlines()
    return "\n".join(difflib.unified_diff(original, mutated.splitlines(), "server.py", "mutant",
                                          lineterm="", n=1))


def choose(total: int, sample: int | None, seed: int) -> list[int]:
    """The mutant numbers to run: all, or ``sample`` of them chosen with ``seed``."""
    if sample is None or sample >= total:
        return list(range(total))
    return sorted(random.Random(seed).sample(range(total), sample))


def judge(mutant_file: Path, workdir: Path, timeout: float) -> tuple[str, str]:
    """Run the suite against one mutant: (outcome, the first case that failed or a note)."""
    results = workdir / "results.json"
    results.unlink(missing_ok=True)
    command = join_command([sys.executable, str(mutant_file), "--port"]) + " {port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # The suite's own pytest command line (--strict: a broken SHOULD counts), plus -x: one
    # failed case is enough to kill.
    cli = build_parser().parse_args(["--server-cmd", command, "--json", str(results), "--strict"])
    argv = [sys.executable, "-m", "pytest", *pytest_args(cli), "-x"]
    group = process_group_start()
    proc = subprocess.Popen(argv, cwd=workdir, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=group.start_new_session,
                            creationflags=group.creationflags)
    try:
        status = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        if os.name == "posix":
            # Ctrl-C first: pytest tears its fixtures down, which stops the mutant server
            # it started (in a session of its own, which the group's stop cannot reach).
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        stop_process_group(proc, timeout=10)
        return TIMED_OUT, f"no verdict within {timeout:g} s"
    note = f"exit status {status}"
    try:
        doc = json.loads(results.read_text())
        if doc["summary"]["exit_status"] == 0:
            return SURVIVED, ""
        failed = [r["id"] for r in doc["records"] if r["verdict"] in ("fail", "error", "non-strict")]
        note = ", ".join(failed[:3]) + (f" (+{len(failed) - 3})" if len(failed) > 3 else "") or \
            doc["summary"].get("target_error") or (doc["summary"].get("preflight") or {}).get(
                "headline") or note
    except (OSError, ValueError, KeyError):
        if status == 0:
            return SURVIVED, ""
    return KILLED, note


def run(numbers: Sequence[int], found: Sequence[Mutant], source: str,
        timeout: float) -> Iterator[tuple[Mutant, str, str, str]]:
    """Judge each mutant in turn: (mutant, outcome, note, diff)."""
    with tempfile.TemporaryDirectory(prefix="chat-mutants-") as tmp:
        workdir = Path(tmp)
        # The control: the unmutated copy, run the same way, must pass, or no kill means anything.
        control = workdir / "unmutated.py"
        control.write_text(ast.unparse(ast.parse(source)))
        outcome, note = judge(control, workdir, timeout)
        if outcome != SURVIVED:
            raise SystemExit(f"mutate: the suite does not pass the unmutated copy ({outcome}: {note})")
        for number in numbers:
            mutant = found[number]
            mutated = mutate(source, number)
            change = diff(source, mutated)
            if mutant.log_only:
                yield mutant, EQUIVALENT, "only a log.* call changes", change
                continue
            path = workdir / f"mutant_{number}.py"
            path.write_text(mutated)
            outcome, note = judge(path, workdir, timeout)
            yield mutant, outcome, note, change


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mutate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=int, metavar="N", default=None,
                        help="run N mutants chosen with --seed (default: all)")
    parser.add_argument("--seed", type=int, default=11, help="seed of the sample (default 11)")
    parser.add_argument("--only", type=int, nargs="*", metavar="NUMBER", default=None,
                        help="run only these mutant numbers")
    parser.add_argument("--timeout", type=float, default=RUN_TIMEOUT,
                        help="seconds per mutant run (default %(default)s)")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    args = parser.parse_args(argv)
    if args.sample is not None and args.sample < 1:
        parser.error("--sample must be at least 1")
    source = SOURCE.read_text()
    found = mutants(source)
    if args.list:
        for m in found:
            print(f"#{m.number:<4} line {m.line:<4} {m.kind:<10} {m.where}"
                  + ("  (log only)" if m.log_only else ""))
        print(f"{len(found)} mutants of {SOURCE.relative_to(ROOT)}")
        return 0
    numbers = args.only if args.only is not None else choose(len(found), args.sample, args.seed)
    if any(not 0 <= n < len(found) for n in numbers):
        parser.error(f"mutant numbers are 0..{len(found) - 1}")
    print(f"{len(numbers)} of {len(found)} mutants of {SOURCE.relative_to(ROOT)} "
          f"(seed {args.seed}), each judged by chat-conformance", flush=True)
    counts = {KILLED: 0, SURVIVED: 0, TIMED_OUT: 0, EQUIVALENT: 0}
    survivors = []
    started = time.monotonic()
    for mutant, outcome, note, change in run(numbers, found, source, args.timeout):
        counts[outcome] += 1
        print(f"#{mutant.number:<4} line {mutant.line:<4} {mutant.kind:<10} {mutant.where:<24} "
              f"{outcome:<10} {note}", flush=True)
        if outcome == SURVIVED:
            survivors.append((mutant, change))
    for mutant, change in survivors:
        print(f"\nsurvivor #{mutant.number} ({mutant.kind} in {mutant.where}, line {mutant.line}):")
        print(change)
    judged = counts[KILLED] + counts[SURVIVED] + counts[TIMED_OUT]
    score = (counts[KILLED] + counts[TIMED_OUT]) / judged if judged else 0.0
    print(f"\nkilled {counts[KILLED]}  survived {counts[SURVIVED]}  timed-out {counts[TIMED_OUT]}  "
          f"equivalent {counts[EQUIVALENT]}  -> mutation score {score:.0%} of {judged} judged "
          f"in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
