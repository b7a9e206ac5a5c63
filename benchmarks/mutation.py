"""Mutation testing of one module: does the test suite notice when the code is subtly wrong?

Each mutant changes one thing in ``--module`` (a comparison ``<``/``<=``/``>``/``>=``/``==``/``!=``,
``+``/``-``, ``*``/``/``, an integer constant +-1, ``True``/``False``, a removed unary ``not``/``-``,
``and``/``or``, ``min``/``max``). It is written into a private copy of the repository (``uec_repro/``,
``tests/``, ``pyproject.toml``; the working tree is never touched), and the tests run there with
``pytest -x``. A mutant is *killed* when a test fails, *survived* when all pass, *timeout* when they run past
``--timeout`` twice (the second time with three times as long; counted as killed in the kill rate). Nothing is
mutated inside ``raise`` statements, f-strings (error messages), ``self._log(...)`` calls or annotations.

    python benchmarks/mutation.py --module uec_repro/selection.py --tests tests/test_selection.py
    python benchmarks/mutation.py --module uec_repro/evaluation.py --tests tests/test_evaluation.py \\
        --functions pass_at_k summarize majority_answer sample --tests-rev HEAD --label before

``--tests-rev REV`` runs the test files as they were at git revision ``REV`` (read with ``git show``). Results
go to ``benchmarks/results/mutation-<module>.json`` under ``--label`` (other labels in the file are kept),
rewritten after every mutant. ``--resume`` keeps the killed mutants of the run already under ``--label`` (same
module source) and tests the others again: the loop after adding tests, or after an interrupted run.
"""

from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from queue import Queue
from threading import Lock

ROOT = Path(__file__).resolve().parent.parent
SWAPS = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.And: ast.Or,
    ast.Or: ast.And,
}
SYMBOL = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.And: "and",
    ast.Or: "or",
    ast.Not: "not",
    ast.USub: "-",
}


@dataclass
class Mutant:
    line: int
    operator: str
    original: str  # source lines of the mutated expression, before and after
    mutated: str
    source: str = ""  # the whole mutated module
    status: str = "pending"  # killed | survived | timeout | error
    seconds: float = 0.0


def _variants(node: ast.AST):
    """(description, replacement node) for each mutation of ``node`` itself (not of its children)."""

    def changed(**fields):
        new = copy.copy(node)
        for name, value in fields.items():
            setattr(new, name, value)
        return new

    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in SWAPS:
                ops = [*node.ops[:i], SWAPS[type(op)](), *node.ops[i + 1 :]]
                yield f"{SYMBOL[type(op)]} -> {SYMBOL[SWAPS[type(op)]]}", changed(ops=ops)
    elif isinstance(node, ast.BinOp | ast.AugAssign | ast.BoolOp) and type(node.op) in SWAPS:
        yield f"{SYMBOL[type(node.op)]} -> {SYMBOL[SWAPS[type(node.op)]]}", changed(op=SWAPS[type(node.op)]())
    elif isinstance(node, ast.Constant) and type(node.value) is bool:
        yield f"{node.value} -> {not node.value}", changed(value=not node.value)
    elif isinstance(node, ast.Constant) and type(node.value) is int:
        for value in (
            node.value + 1,
            node.value - 1,
        ):  # a negative literal is written -(1), as Python parses it
            yield (
                f"{node.value} -> {value}",
                changed(value=value) if value >= 0 else ast.UnaryOp(ast.USub(), ast.Constant(-value)),
            )
    elif isinstance(node, ast.UnaryOp) and type(node.op) in (ast.Not, ast.USub):
        yield f"drop unary {SYMBOL[type(node.op)]}", node.operand
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("min", "max"):
        other = {"min": "max", "max": "min"}[node.func.id]
        yield f"{node.func.id} -> {other}", changed(func=ast.Name(id=other, ctx=ast.Load()))


def _skipped(node: ast.AST) -> bool:
    """Subtrees never mutated: raise statements, f-strings (messages), logging calls."""
    return isinstance(node, ast.Raise | ast.JoinedStr) or (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "_log"
    )


def mutants(source: str, functions: set[str] | None = None) -> list[Mutant]:
    tree, lines, found = ast.parse(source), source.splitlines(keepends=True), []
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def position(lineno: int, col: int) -> int:  # ast columns are UTF-8 byte offsets
        return offsets[lineno - 1] + len(lines[lineno - 1].encode()[:col].decode())

    def visit(node: ast.AST, parent: ast.AST | None, field: str, index: int | None, scope: str, inside: bool):
        if _skipped(node) or field in ("annotation", "returns"):
            return
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            scope = f"{scope}.{node.name}" if scope else node.name
            inside = inside or functions is None or node.name in functions or scope in functions
        if inside and parent is not None:
            for operator, replacement in _variants(node):
                found.append(
                    _apply(tree, source, parent, field, index, node, replacement, operator, position)
                )
        for child_field, value in ast.iter_fields(node):
            children = value if isinstance(value, list) else [value]
            for i, child in enumerate(children):
                if isinstance(child, ast.AST) and not isinstance(
                    child, ast.expr_context | ast.operator | ast.cmpop
                ):
                    visit(child, node, child_field, i if isinstance(value, list) else None, scope, inside)

    visit(tree, None, "", None, "", functions is None)
    return [m for m in found if m is not None]


def _apply(tree, source, parent, field, index, node, replacement, operator, position) -> Mutant | None:
    """The mutant with ``node`` replaced: its source segment rewritten in place (formatting kept), checked
    against the mutated tree; the whole module unparsed when the in-place edit would mean something else."""

    def put(value):
        if index is None:
            setattr(parent, field, value)
        else:
            getattr(parent, field)[index] = value

    put(replacement)
    expected = ast.dump(tree)
    mutated_tree_source = ast.unparse(tree)
    put(node)
    start = position(node.lineno, node.col_offset)
    end = position(node.end_lineno, node.end_col_offset)
    text = source[:start] + ast.unparse(replacement) + source[end:]
    try:
        same = ast.dump(ast.parse(text)) == expected
    except SyntaxError:
        same = False
    text = text if same else mutated_tree_source
    first, last = source.rfind("\n", 0, start) + 1, source.find("\n", end)
    before = source[first : last if last >= 0 else None]
    # the mutated lines end where the original ones did, shifted by the change in length
    after = (
        text[first : last + len(text) - len(source) if last >= 0 else None]
        if same
        else ast.unparse(replacement)
    )
    return Mutant(node.lineno, operator, before.strip(), after.strip(), text)


def run_tests(workdir: Path, tests: list[str], markers: str, timeout: float) -> tuple[str, float]:
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    command += ["-m", markers] if markers else []
    env = {**os.environ, "PYTHONPATH": str(workdir), "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # pytest and any worker process it started
        process.wait()
        return "timeout", time.perf_counter() - started
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    status = {0: "survived", 1: "killed"}.get(code, "error" if code in (3, 4, 5) else "killed")
    return status, time.perf_counter() - started


def make_copy(tests: list[str], rev: str | None) -> Path:
    workdir = Path(tempfile.mkdtemp(prefix="mutation-"))
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("uec_repro", "tests", "benchmarks"):
        shutil.copytree(ROOT / folder, workdir / folder, ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", workdir / "pyproject.toml")
    for test in tests if rev else []:
        path = test.split("::")[0]
        text = subprocess.run(
            ["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True, capture_output=True
        ).stdout
        (workdir / path).write_bytes(text)
    return workdir


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--module", required=True, help="file to mutate, relative to the repository root")
    parser.add_argument("--tests", nargs="+", required=True, help="test files or node ids")
    parser.add_argument("--functions", nargs="*", help="mutate only these functions / Class.method names")
    parser.add_argument("--max-mutants", type=int, help="stop after this many (in source order)")
    parser.add_argument("--markers", default="not slow", help="pytest -m expression ('' for all tests)")
    parser.add_argument("--tests-rev", help="take the test files from this git revision (e.g. HEAD)")
    parser.add_argument("--timeout", type=float, help="seconds per mutant (default: 3 x the clean run + 10)")
    parser.add_argument("--jobs", type=int, default=1, help="mutants tested at once, each in its own copy")
    parser.add_argument("--label", default="current", help="key of this run in the output file")
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/mutation-<module>.json")
    parser.add_argument(
        "--resume", action="store_true", help="keep the killed mutants of the run under --label"
    )
    args = parser.parse_args(argv)
    module = Path(args.module)
    original = (ROOT / module).read_text()  # a snapshot: the file may change in the working tree meanwhile
    found = mutants(original, set(args.functions) if args.functions else None)
    found = found[: args.max_mutants] if args.max_mutants else found
    digest = hashlib.sha256(original.encode()).hexdigest()[:16]
    out = args.out or ROOT / "benchmarks" / "results" / f"mutation-{module.stem}.json"
    document = json.loads(out.read_text()) if out.exists() else {}
    earlier = document.get("runs", {}).get(args.label, {})
    if args.resume and earlier.get("module_sha256") == digest:
        for mutant, result in zip(found, earlier["results"], strict=False):
            if (result["operator"], result["mutated"], result["status"]) == (
                mutant.operator,
                mutant.mutated,
                "killed",
            ):
                mutant.status, mutant.seconds = "killed", result["seconds"]
    lock = Lock()

    def save(clean_seconds: float, timeout: float) -> dict:
        counts = {
            s: sum(m.status == s for m in found)
            for s in ("killed", "timeout", "survived", "error", "pending")
        }
        tested = len(found) - counts["error"] - counts["pending"]
        run = {
            "module": str(module),
            "module_sha256": digest,
            "tests": args.tests,
            "tests_rev": args.tests_rev,
            "functions": args.functions,
            "markers": args.markers,
            "clean_run_seconds": round(clean_seconds, 1),
            "timeout_s": round(timeout, 1),
            **counts,
            "mutants": len(found),
            "kill_rate": round((counts["killed"] + counts["timeout"]) / max(1, tested), 4),
            "results": [{k: v for k, v in asdict(m).items() if k != "source"} for m in found],
        }
        with lock:
            document.setdefault("runs", {})[args.label] = run
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(document, indent=1) + "\n")
        return run

    copies = [make_copy(args.tests, args.tests_rev) for _ in range(max(1, args.jobs))]
    for workdir in copies:
        (workdir / module).write_text(original)
    try:
        status, clean_seconds = run_tests(copies[0], args.tests, args.markers, timeout=3600)
        if status != "survived":
            sys.exit(f"the tests fail (or find nothing) without any mutant: {status}")
        timeout = args.timeout or 3 * clean_seconds + 10
        free: Queue[Path] = Queue()
        for workdir in copies:
            free.put(workdir)

        def test(numbered: tuple[int, Mutant], limit: float = timeout) -> None:
            if numbered[1].status == "killed":  # kept by --resume
                return
            number, mutant = numbered
            workdir = free.get()
            try:
                (workdir / module).write_text(mutant.source)
                mutant.status, mutant.seconds = run_tests(workdir, args.tests, args.markers, limit)
            finally:
                (workdir / module).write_text(original)
                free.put(workdir)
            print(
                f"[{number + 1}/{len(found)}] {mutant.status:8s} {module}:{mutant.line} {mutant.operator}: "
                f"{mutant.original}  ->  {mutant.mutated}",
                flush=True,
            )
            save(clean_seconds, timeout)

        with ThreadPoolExecutor(len(copies)) as pool:
            list(pool.map(test, enumerate(found)))
        retry = [(number, m) for number, m in enumerate(found) if m.status == "timeout"]
        for numbered in retry:  # a busy machine can make a run slow: timeouts get a second, longer try
            test(numbered, limit=3 * timeout)
    finally:
        for workdir in copies:
            shutil.rmtree(workdir, ignore_errors=True)
    run = save(clean_seconds, timeout)
    print(
        f"{module} [{args.label}]: {run['killed'] + run['timeout']}/{len(found) - run['error']} mutants "
        f"killed (kill rate {run['kill_rate']:.1%}; {run['timeout']} by timeout), {run['survived']} "
        f"survived, {run['error']} errors -> {out}"
    )
    return run


if __name__ == "__main__":
    main()
