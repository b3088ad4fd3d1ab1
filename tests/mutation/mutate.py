"""The conformance suite's own power, measured: a mutation score over reference/server.py.

    python tests/mutation/mutate.py --sample 60          # tox -e mutation
    python tests/mutation/mutate.py --list               # every mutant, no run

A small AST mutator (mutmut and cosmic-ray drive a test suite that imports
the code under test; ours judges a server in another process, through
``--server-cmd``) makes one change at a time to a copy of the reference
server -- an operator or comparison swapped, a constant changed, a slice
bound moved by one, a statement deleted, an ``if``'s branches swapped or its
test negated -- and runs ``chat-conformance`` against each mutant, in the modes
of the suite that reach the mutated line:

* plain      the base protocol over TCP;
* profile    ``--profile dm,history`` claimed by server and suite (PROTOCOL.md section 8);
* tls        ``--tls-self-signed`` / ``--tls`` (PROTOCOL.md, Profile: tls).

Which lines each mode reaches is measured, not guessed: the unmutated server is
judged first in every mode (it must pass, or no kill means anything) under a line
tracer.  A mutant is judged in plain mode when plain reaches its line, and in
another mode when that mode reaches the line and plain does not, or its function
has lines only that mode runs, or the statement names that mode's state; the
first kill ends it.  Outcomes:

* killed       the suite failed it in some mode (exit status 1, or 3 when it does not
               start); the suite runs with ``--strict``, so a broken SHOULD counts too;
* survived     the suite passed it in every mode that reaches it (or none reaches it):
               its diff is printed, to be killed by a new case or reviewed;
* timed-out    the run passed its time bound and was stopped (counted as killed);
* equivalent   the change can only reach the server's log (a ``log.*`` call), or
               reviewed.toml says no client can tell it from the reference; not run;
* unobservable reviewed.toml says a client could tell, but only where the suite cannot
               look (another platform, IPv6, a 3/4 GiB memory budget, the command line);
               not run, and counted as not killed.

reviewed.toml is keyed by each mutant's stable id (function, kind, change and a digest
of the statement's text), so an entry follows its mutant when other code moves and
goes stale (reported) when its statement changes; ``--recheck`` runs the listed
mutants too and flags a review the suite now contradicts.

The mutants are numbered in source order; ``--sample N`` takes N of them with
a seeded random choice (``--seed``), so a run is repeatable.  It lives with the
self-tests, not in a package: it tests the tests, and nothing imports it.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import difflib
import hashlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import tokenize
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from conformance.cli import build_parser, pytest_args
from reference.process_group import join_command, process_group_start, stop_process_group

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "reference" / "server.py"
RUN_TIMEOUT = 150.0
REVIEWED = Path(__file__).resolve().parent / "reviewed.toml"
KILLED, SURVIVED, TIMED_OUT = "killed", "survived", "timed-out"
EQUIVALENT, UNOBSERVABLE = "equivalent", "unobservable"

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
    reach: tuple[int, int] = (0, 0)  # source lines whose execution runs the mutated code
    scope: tuple[int, int] = (0, 0)  # the enclosing function's lines ((0, 0): the module)
    #: A name that survives edits elsewhere in the file (the number and line do not): the
    #: enclosing function, the kind, what changes, and a digest of the mutated statement's
    #: text; ``~2``, ``~3`` for a repeat.  reviewed.toml is keyed by it.
    id: str = ""


def _is_log_call(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "log")


def _reach(stmt: ast.stmt) -> tuple[int, int]:
    """The lines a line tracer reports when ``stmt`` runs: a simple statement's own lines, a
    compound one's header (its decorators, test or iterable, up to its body)."""
    first = min([stmt.lineno] + [d.lineno for d in getattr(stmt, "decorator_list", [])])
    body = getattr(stmt, "body", None)
    if isinstance(body, list) and body:
        return first, max(first, body[0].lineno - 1)
    return first, stmt.end_lineno or stmt.lineno


def _code_text(text: str) -> str:
    """A statement's tokens without comments or layout: what a reviewed id's digest covers,
    so that a comment or a re-wrapped line does not make a review stale."""
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENDMARKER}
    try:
        tokens = [t.string for t in tokenize.generate_tokens(io.StringIO(text.strip() + "\n").readline)
                  if t.type not in skip]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return " ".join(text.split())
    return " ".join(tokens)


def _is_docstring(node: ast.AST) -> bool:
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str))


class _Sites(ast.NodeTransformer):
    """Walks the tree in source order, numbering each possible mutation; applies number ``target``."""

    def __init__(self, target: int | None = None, lines: Sequence[str] = ()) -> None:
        self.target = target
        self._lines = lines
        self.found: list[Mutant] = []
        self._where = "<module>"
        self._log_depth = 0
        self._depth = 0  # functions we are in: only their statements may be deleted
        self._stmt: tuple[int, int] = (0, 0)  # reach of the innermost statement being visited
        self._scope: tuple[int, int] = (0, 0)  # the module: no function

    def visit(self, node: ast.AST) -> ast.AST:
        if not isinstance(node, ast.stmt):
            return super().visit(node)
        outer, self._stmt = self._stmt, _reach(node)
        try:
            return super().visit(node)
        finally:
            self._stmt = outer

    def _site(self, kind: str, node: ast.AST, change: str = "") -> bool:
        """Count a site; True when it is the one to apply."""
        number = len(self.found)
        reach = _reach(node) if isinstance(node, ast.stmt) else self._stmt
        ident = ""
        if self._lines:
            text = _code_text("\n".join(self._lines[reach[0] - 1:reach[1]]))
            digest = hashlib.sha1(text.encode()).hexdigest()[:8]
            ident = f"{self._where}:{kind}{':' + change if change else ''}@{digest}"
        self.found.append(Mutant(number, kind, getattr(node, "lineno", 0), self._where,
                                 self._log_depth > 0, reach, self._scope, ident))
        return number == self.target

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        outer, self._where = self._where, node.name
        if node.name in ("build_parser",):  # help texts and defaults of the command line
            self._where = outer
            return node
        outer_scope, self._scope = self._scope, (node.lineno, node.end_lineno or node.lineno)
        self._depth += 1
        returns, node.returns = node.returns, None  # annotations are never evaluated here
        result = self.generic_visit(node)
        node.returns = returns
        self._depth -= 1
        self._where, self._scope = outer, outer_scope
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
        if swap is not None and self._site("operator", node, _names(node.op, swap)):
            node.op = swap()
        return node

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        self.generic_visit(node)
        swap = _SWAP_BINOP.get(type(node.op))
        if swap is not None and self._site("operator", node, _names(node.op, swap)):
            node.op = swap()
        return node

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        for i, op in enumerate(node.ops):
            swap = _SWAP_CMP.get(type(op))
            if swap is not None and self._site("comparison", node, _names(op, swap)):
                node.ops[i] = swap()
        return node

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        self.generic_visit(node)
        if self._site("boolop", node, _names(node.op, ast.Or if isinstance(node.op, ast.And)
                                                 else ast.And)):
            node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        value = node.value
        if isinstance(value, bool):
            if self._site("constant", node, f"{value}>{not value}"):
                return ast.copy_location(ast.Constant(not value), node)
        elif isinstance(value, int):
            new = value + 1 if value != 1 else 0
            if self._site("constant", node, f"{value}>{new}"):
                return ast.copy_location(ast.Constant(new), node)
        return node

    def visit_Slice(self, node: ast.Slice) -> ast.AST:
        self.generic_visit(node)
        for bound in ("lower", "upper"):
            expr = getattr(node, bound)
            if expr is not None and self._site("slice", node, f"{bound}+1"):
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


def _names(old: object, new: type) -> str:
    return f"{type(old).__name__}>{new.__name__}"


def mutants(source: str) -> list[Mutant]:
    """Every mutant of ``source``, in source order, each with its unique ``id``."""
    sites = _Sites(lines=source.splitlines())
    sites.visit(ast.parse(source))
    seen: dict[str, int] = {}
    out = []
    for m in sites.found:
        seen[m.id] = seen.get(m.id, 0) + 1
        out.append(m if seen[m.id] == 1 else dataclasses.replace(m, id=f"{m.id}~{seen[m.id]}"))
    return out


def mutate(source: str, number: int) -> str:
    """``source`` (normalised by ast.unparse) with mutation ``number`` applied."""
    tree = ast.parse(source)
    _Sites(number).visit(tree)
    return ast.unparse(ast.fix_missing_locations(tree))


def diff(source: str, mutated: str) -> str:
    original = ast.unparse(ast.parse(source)).splitlines()
    return "\n".join(difflib.unified_diff(original, mutated.splitlines(), "server.py", "mutant",
                                          lineterm="", n=1))


def changed_text(change: str) -> str:
    """The diff's removed and added lines, for a reader of reviewed.toml."""
    lines = [line for line in change.splitlines()[2:] if line[:1] in "-+"]
    return " / ".join(" ".join(line.split()) for line in lines)


@dataclass(frozen=True)
class Review:
    verdict: str  # equivalent (no client can tell) or unobservable (a client could, the suite cannot)
    reason: str
    change: str


def load_reviews(path: Path = REVIEWED) -> dict[str, Review]:
    """The committed, reviewed survivors: id -> verdict and reason."""
    doc = tomllib.loads(path.read_text()) if path.exists() else {}
    out: dict[str, Review] = {}
    for entry in doc.get("mutant", []):
        if entry["verdict"] not in (EQUIVALENT, UNOBSERVABLE) or not entry.get("reason"):
            raise SystemExit(f"mutate: {path.name}: {entry.get('id')}: needs verdict "
                             f"'{EQUIVALENT}' or '{UNOBSERVABLE}' and a reason")
        if entry["id"] in out:
            raise SystemExit(f"mutate: {path.name}: {entry['id']} is listed twice")
        out[entry["id"]] = Review(entry["verdict"], entry["reason"], entry.get("change", ""))
    return out


def choose(total: int, sample: int | None, seed: int) -> list[int]:
    """The mutant numbers to run: all, or ``sample`` of them chosen with ``seed``."""
    if sample is None or sample >= total:
        return list(range(total))
    return sorted(random.Random(seed).sample(range(total), sample))


# How the suite sees the server: the base protocol over TCP, the DM and history profiles
# claimed (PROTOCOL.md section 8), TLS (its Profile: tls).  Each mode is (server arguments,
# chat-conformance arguments).
MODES: dict[str, tuple[list[str], list[str]]] = {
    "plain": ([], []),
    "profile": (["--profile", "dm,history"], ["--profile", "dm,history"]),
    "tls": (["--tls-self-signed"], ["--tls"]),
}

# Runs a server script under a line tracer and writes the lines of that script it executed
# (JSON) at exit: which code each mode of the suite reaches.
_TRACER = """\
import atexit, json, os, runpy, sys, threading
target, out = os.path.abspath(sys.argv[1]), sys.argv[2]
sys.argv = [target] + sys.argv[3:]
lines = set()
def local(frame, event, arg):
    if event == "line":
        lines.add(frame.f_lineno)
    return local
def tracer(frame, event, arg):
    if frame.f_code.co_filename != target:
        return None
    lines.add(frame.f_lineno)
    return local
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(lines))))
sys.settrace(tracer)
threading.settrace(tracer)
runpy.run_path(target, run_name="__main__")
"""


#: Words that tie a statement to a mode's state (``self._tls_eof = False`` in ``__init__``,
#: which every mode runs but only TLS reads).
MODE_WORDS = {"tls": ("tls", "ssl", "handshak"), "profile": ("profile", "replay", "history", "dm",
                                                             "direct")}


def modes_for(mutant: Mutant, reached: dict[str, set[int]], text: str = "") -> list[str]:
    """The modes to judge a mutant in, in order (the first kill ends it): plain when the
    suite's plain run reaches its line; another mode when that mode reaches the line and
    either plain does not, or the enclosing function has lines only that mode reaches (code
    like ``if client.tls:`` whose other branch plain runs), or the statement's ``text`` names
    that mode's state.  None: no run reaches it."""
    lines = set(range(mutant.reach[0], mutant.reach[1] + 1))
    first, last = mutant.scope
    plain = reached["plain"]
    out = ["plain"] if lines & plain else []
    for mode, seen in reached.items():
        if mode == "plain" or not lines & seen:
            continue
        if (not lines & plain or any(first <= line <= last for line in seen - plain)
                or any(word in text.lower() for word in MODE_WORDS.get(mode, ()))):
            out.append(mode)
    return out


def judge(server_cmd: list[str], mode: str, workdir: Path, timeout: float) -> tuple[str, str]:
    """Run the suite in ``mode`` against one server command: (outcome, the first case that
    failed or a note)."""
    results = workdir / "results.json"
    results.unlink(missing_ok=True)
    server_args, suite_args = MODES[mode]
    command = join_command([*server_cmd, *server_args, "--port"]) + " {port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # The suite's own pytest command line (--strict: a broken SHOULD counts), plus -x: one
    # failed case is enough to kill.
    cli = build_parser().parse_args(["--server-cmd", command, "--json", str(results), "--strict",
                                     *suite_args])
    argv = [sys.executable, "-m", "pytest", *pytest_args(cli), "-x"]
    group = process_group_start()
    proc = subprocess.Popen(argv, cwd=workdir, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=group.start_new_session,
                            creationflags=group.creationflags)
    try:
        status = proc.wait(timeout)
    except (subprocess.TimeoutExpired, KeyboardInterrupt) as exc:
        if os.name == "posix":
            # Ctrl-C first: pytest tears its fixtures down, which stops the mutant server
            # it started (in a session of its own, which the group's stop cannot reach).
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        stop_process_group(proc, timeout=10)
        if isinstance(exc, KeyboardInterrupt):
            raise
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


def controls(workdir: Path, timeout: float) -> dict[str, set[int]]:
    """Judge the unmutated server in every mode (it must pass, or no kill means anything),
    under the line tracer: the lines of reference/server.py each mode reaches."""
    tracer = workdir / "trace_server.py"
    tracer.write_text(_TRACER)
    reached = {}
    for mode in MODES:
        lines = workdir / f"lines-{mode}.json"
        outcome, note = judge([sys.executable, str(tracer), str(SOURCE), str(lines)], mode,
                              workdir, timeout)
        if outcome != SURVIVED:
            raise SystemExit(f"mutate: the suite does not pass the unmutated server "
                             f"in mode {mode} ({outcome}: {note})")
        try:
            reached[mode] = set(json.loads(lines.read_text()))
        except (OSError, ValueError):
            raise SystemExit(f"mutate: the traced server wrote no line list in mode {mode}") from None
    return reached


@dataclass(frozen=True)
class Verdict:
    mutant: Mutant
    id: str
    outcome: str
    note: str
    change: str


def run(numbers: Sequence[int], found: Sequence[Mutant], source: str, timeout: float,
        reviews: dict[str, Review], recheck: bool = False) -> Iterator[Verdict]:
    """Judge each mutant in turn."""
    with tempfile.TemporaryDirectory(prefix="chat-mutants-") as tmp:
        workdir = Path(tmp)
        reached = controls(workdir, timeout)
        lines = source.splitlines()
        for number in numbers:
            mutant, ident = found[number], found[number].id
            mutated = mutate(source, number)
            change = diff(source, mutated)
            if mutant.log_only:
                yield Verdict(mutant, ident, EQUIVALENT, "only a log.* call changes", change)
                continue
            review = reviews.get(ident)
            if review is not None and not recheck:
                yield Verdict(mutant, ident, review.verdict, review.reason, change)
                continue
            modes = modes_for(mutant, reached, "\n".join(lines[mutant.reach[0] - 1:mutant.reach[1]]))
            if not modes:
                outcome, note = SURVIVED, "no run of the suite reaches this line"
            else:
                path = workdir / f"mutant_{number}.py"
                path.write_text(mutated)
                for mode in modes:
                    outcome, note = judge([sys.executable, str(path)], mode, workdir, timeout)
                    note = f"[{mode}] {note}".rstrip()
                    if outcome != SURVIVED:
                        break
            if review is not None and outcome == SURVIVED:
                outcome, note = review.verdict, f"{review.reason} (rechecked: survives)"
            elif review is not None:
                note += f"  -- STALE REVIEW: reviewed as {review.verdict}, but the suite kills it"
            yield Verdict(mutant, ident, outcome, note, change)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mutate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=int, metavar="N", default=None,
                        help="run N mutants chosen with --seed (default: all)")
    parser.add_argument("--seed", type=int, default=11, help="seed of the sample (default 11)")
    parser.add_argument("--only", type=int, nargs="*", metavar="NUMBER", default=None,
                        help="run only these mutant numbers")
    parser.add_argument("--timeout", type=float, default=RUN_TIMEOUT,
                        help="seconds per mutant run (default %(default)s)")
    parser.add_argument("--recheck", action="store_true",
                        help=f"also run the mutants {REVIEWED.name} lists, to find stale reviews")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    args = parser.parse_args(argv)
    if os.name == "posix":  # a stopped run stops the suite and the mutant it was judging
        signal.signal(signal.SIGTERM, _interrupt)
    if args.sample is not None and args.sample < 1:
        parser.error("--sample must be at least 1")
    source = SOURCE.read_text()
    found = mutants(source)
    reviews = load_reviews()
    if args.list:
        for m in found:
            ident = m.id
            review = reviews.get(ident)
            note = "  (log only)" if m.log_only else f"  ({review.verdict})" if review else ""
            print(f"#{m.number:<4} line {m.line:<4} {m.kind:<10} {ident:<40}{note}")
        print(f"{len(found)} mutants of {SOURCE.relative_to(ROOT)}")
        return 0
    numbers = args.only if args.only is not None else choose(len(found), args.sample, args.seed)
    if any(not 0 <= n < len(found) for n in numbers):
        parser.error(f"mutant numbers are 0..{len(found) - 1}")
    stale = set(reviews) - {m.id for m in found}
    if stale:
        print(f"mutate: {len(stale)} entries of {REVIEWED.name} match no mutant of today's "
              f"server (review again): {', '.join(sorted(stale))}", flush=True)
    print(f"{len(numbers)} of {len(found)} mutants of {SOURCE.relative_to(ROOT)} "
          f"(seed {args.seed}), each judged by chat-conformance", flush=True)
    counts = {KILLED: 0, SURVIVED: 0, TIMED_OUT: 0, EQUIVALENT: 0, UNOBSERVABLE: 0}
    survivors = []
    started = time.monotonic()
    for v in run(numbers, found, source, args.timeout, reviews, args.recheck):
        counts[v.outcome] += 1
        print(f"#{v.mutant.number:<4} line {v.mutant.line:<4} {v.id:<40} {v.outcome:<12} {v.note}",
              flush=True)
        if v.outcome == SURVIVED:
            survivors.append(v)
    for v in survivors:
        print(f"\nsurvivor #{v.mutant.number} {v.id} (line {v.mutant.line}):")
        print(v.change)
    # The score leaves out only the equivalent mutants: an unobservable one is a change a
    # client could see, which the suite does not kill.
    judged = counts[KILLED] + counts[SURVIVED] + counts[TIMED_OUT] + counts[UNOBSERVABLE]
    score = (counts[KILLED] + counts[TIMED_OUT]) / judged if judged else 0.0
    print(f"\nkilled {counts[KILLED]}  survived {counts[SURVIVED]}  timed-out {counts[TIMED_OUT]}  "
          f"equivalent {counts[EQUIVALENT]}  unobservable {counts[UNOBSERVABLE]}  -> mutation "
          f"score {score:.0%} of {judged} judged in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
