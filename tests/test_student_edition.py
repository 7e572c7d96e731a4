"""``make student``: the chapters without solutions or outputs, and nothing they still run
depends on a solution cell.

The book build executes every chapter in full, solutions included; the student edition is the
same chapter minus its solution cells (``scripts/student_edition.py``). So that the build's run
also vouches for the student edition, ``test_student_chapter_does_not_depend_on_its_solutions``
checks every chapter statically (``ast`` and ``symtable``, nothing is executed) and fails when

1. a kept code cell reads a module-level name (at its top level, or as a global inside its
   functions, lambdas, classes and comprehensions) that only removed solution cells bind;
2. a solution cell binds a name (assignment, ``for``/``with`` target, import, ``def``/``class``,
   ``del``, a ``global`` assigned in a function) that a later kept cell reads before binding it
   itself, with no kept cell in between binding it: the kept cell would see another value in the
   student edition ("before" is by top-level statement: a name read and bound in one statement,
   such as ``x = x + 1`` or a ``for`` loop over it, counts as read first);
3. a solution cell mutates an object it did not create: it assigns to, augments or deletes an
   attribute or subscript of a name (``x.a = 1``, ``x[i] += 1``, ``del x[i]``), augments a name
   (``x += 1``), or calls an in-place method on a name (``x.clamp_()``, ``x.data.mul_(2)``: any
   method name ending in ``_`` but not ``__``, and the list, dict and set mutators in
   ``MUTATORS``), where that name is not bound in that solution cell other than by augmented
   assignment (names local to a function, lambda or comprehension of the cell count as bound).

Not seen: effects through objects reached without a name (``f(x).a = 1``, a function that
mutates its argument), hidden state (the global random number generator, files, ``torch``
settings), and cells that ``ast`` cannot parse (IPython magics; none in the chapters).
``test_the_dependency_check_*`` show on small synthetic notebooks that each rule can fail.
"""
import ast
import json
import subprocess
import symtable
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from student_edition import SOLUTION_MARKERS, student_notebook  # noqa: E402



def md(text):
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def code(text):
    return {"cell_type": "code", "metadata": {}, "source": text, "outputs": [{"x": 1}],
            "execution_count": 3}


def test_solutions_go_and_exercises_stay():
    nb = {"metadata": {}, "nbformat": 4, "nbformat_minor": 5, "cells": [
        md("Intro.\n\n```{exercise}\n:label: e1\nDo it.\n```\n\n"
           "````{solution} e1\n:class: dropdown\nAnswer one.\n```python\nx = 1\n```\n````\n"
           "After."),
        md("```{exercise}\n:label: e2\nTry.\n```\n\n```{solution-start} e2\n:class: dropdown\n```\n"
           "Answer two."),
        code("secret = 2"),
        md("```{solution-end}\n```\n\nNext section."),
        code("kept = 3"),
    ]}
    out = student_notebook(nb)
    text = json.dumps(out)
    assert "Answer" not in text and "secret" not in text
    assert "Do it." in text and "Try." in text and "After." in text and "Next section." in text
    assert [c["source"] for c in out["cells"] if c["cell_type"] == "code"] == ["kept = 3"]
    assert all(c["outputs"] == [] and c["execution_count"] is None
               for c in out["cells"] if c["cell_type"] == "code")


def test_make_student_writes_every_chapter_without_solutions(tmp_path):
    subprocess.run([sys.executable, str(REPO / "scripts" / "student_edition.py"), str(tmp_path)],
                   check=True, capture_output=True)
    chapters = sorted((REPO / "book").glob("*.ipynb"))
    assert sorted(p.name for p in tmp_path.glob("*.ipynb")) == [p.name for p in chapters]
    for chapter in chapters:
        original = chapter.read_text(encoding="utf-8")
        student = (tmp_path / chapter.name).read_text(encoding="utf-8")
        assert not any(m in student for m in SOLUTION_MARKERS), chapter.name
        assert student.count("{exercise}") == original.count("{exercise}"), chapter.name
        assert '"output_type"' not in student, chapter.name


MUTATORS = {"append", "extend", "insert", "remove", "pop", "clear", "sort", "reverse", "update",
            "add", "discard", "setdefault", "popitem"}


def module_names(source: str) -> tuple[set, set]:
    """(bound, read): the module-level names the code ``source`` binds and reads (see 1, 2)."""
    top = symtable.symtable(source, "<cell>", "exec")
    bound = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported()}
    read = {s.get_name() for s in top.get_symbols() if s.is_referenced()}
    tables = top.get_children()
    while tables:
        table = tables.pop()
        tables += table.get_children()
        for sym in table.get_symbols():
            if sym.is_global() and sym.is_referenced():
                read.add(sym.get_name())
            if sym.is_declared_global() and sym.is_assigned():
                bound.add(sym.get_name())
    return bound, read


def read_first(source: str) -> set:
    """The module-level names ``source`` reads before it binds them (by top-level statement)."""
    first, bound = set(), set()
    for statement in ast.parse(source).body:
        binds, reads = module_names(ast.unparse(statement))
        first |= reads - bound
        bound |= binds
    return first


class _DropAugmentedNames(ast.NodeTransformer):
    """``x += v`` becomes ``v``: what a cell binds other than by augmented assignment."""

    def visit_AugAssign(self, node):
        if isinstance(node.target, ast.Name):
            return ast.copy_location(ast.Expr(node.value), node)
        return node


class _Mutations(ast.NodeVisitor):
    """What a solution cell mutates of objects it did not create (rule 3); ``own``: the names it
    binds other than by augmented assignment."""

    def __init__(self, own: set):
        self.scopes, self.found = [own], []

    def _outside(self, node, what):
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        if isinstance(node, ast.Name) and not any(node.id in s for s in self.scopes):
            self.found.append(f"{what} {node.id}")

    def _store(self, node):
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            kind = "an attribute" if isinstance(node, ast.Attribute) else "a subscript"
            self._outside(node.value, f"assigns to or deletes {kind} of")
        self.generic_visit(node)

    visit_Attribute = visit_Subscript = _store

    def visit_AugAssign(self, node):
        if isinstance(node.target, ast.Name):
            self._outside(node.target, "augments")
        self.generic_visit(node)

    def visit_Call(self, node):
        method = node.func.attr if isinstance(node.func, ast.Attribute) else ""
        if method in MUTATORS or (method.endswith("_") and not method.endswith("__")):
            self._outside(node.func.value, f"calls the in-place .{method}() on")
        self.generic_visit(node)

    def _scope(self, node, local):
        self.scopes.append(local)
        self.generic_visit(node)
        self.scopes.pop()

    def _function(self, node):
        args = node.args
        local = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs,
                                 *filter(None, [args.vararg, args.kwarg])]}
        local |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name)
                  and isinstance(n.ctx, ast.Store)}
        self._scope(node, local)

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def _comprehension(self, node):
        self._scope(node, {n.id for g in node.generators for n in ast.walk(g.target)
                           if isinstance(n, ast.Name)})

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _comprehension


def solution_dependencies(nb: dict) -> list[str]:
    """How the kept code cells of ``nb`` depend on its solution cells (rules 1-3), one line each;
    cells are named by their index in ``nb["cells"]`` (and their id)."""
    kept_sources = [k["source"] for k in student_notebook(nb)["cells"]
                    if k["cell_type"] == "code"]
    cells = []        # (name, source, kept); the kept cells are a subsequence of the chapter's
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            source = "".join(cell["source"])
            kept = bool(kept_sources) and "".join(kept_sources[0]) == source
            if kept:
                kept_sources.pop(0)
            name = f"cell {index}" + (f" ({cell['id']})" if cell.get("id") else "")
            cells.append((name, source, kept))
    names = {source: module_names(source) for _, source, _ in cells}
    first = {source: read_first(source) for _, source, kept in cells if kept}
    kept_bound = set().union(*(names[s][0] for _, s, k in cells if k))
    solution_bound = set().union(*(names[s][0] for _, s, k in cells if not k))
    found = []
    for i, (name, source, kept) in enumerate(cells):
        if kept:
            lost = (names[source][1] - kept_bound) & solution_bound
            found += [f"kept {name} reads {n!r}, which only solution cells bind"
                      for n in sorted(lost)]
            continue
        for n in sorted(names[source][0]):
            for later, later_source, later_kept in cells[i + 1:]:
                if later_kept and n in first[later_source]:
                    found.append(f"solution {name} binds {n!r}, which kept {later} reads")
                if later_kept and n in names[later_source][0]:
                    break
        own = module_names(ast.unparse(_DropAugmentedNames().visit(ast.parse(source))))[0]
        mutations = _Mutations(own)
        mutations.visit(ast.parse(source))
        found += [f"solution {name} {what}, which it did not create" for what in mutations.found]
    return list(dict.fromkeys(found))


@pytest.mark.parametrize("chapter", sorted((REPO / "book").glob("*.ipynb")), ids=lambda p: p.stem)
def test_student_chapter_does_not_depend_on_its_solutions(chapter):
    """Rules 1-3 of the module docstring, on every chapter."""
    nb = json.loads(chapter.read_text(encoding="utf-8"))
    found = solution_dependencies(nb)
    assert not found, f"{chapter.name}: " + "; ".join(found)


BEFORE = "import torch\nx = torch.zeros(3)\nitems = [1]\ndef f():\n    return 1\n"


def exercise(solution: str, after: str) -> dict:
    """A notebook: a kept cell ``BEFORE``, an exercise whose gated solution is the code cell
    ``solution``, then a kept cell ``after``."""
    return {"metadata": {}, "nbformat": 4, "nbformat_minor": 5, "cells": [
        code(BEFORE),
        md("```{exercise}\n:label: e\nDo it.\n```\n\n```{solution-start} e\n```"),
        code(solution),
        md("```{solution-end}\n```"),
        code(after),
    ]}


@pytest.mark.parametrize("solution, after, expected", [
    ("z = 2", "print(z)", "kept cell 4 reads 'z', which only solution cells bind"),
    ("z = 2", "def g():\n    return z", "kept cell 4 reads 'z'"),
    ("x = torch.ones(3)", "print(x.sum())", "solution cell 2 binds 'x', which kept cell 4 reads"),
    ("def f():\n    return 2", "f()", "binds 'f', which kept cell 4 reads"),
    ("for items in [[2]]:\n    pass", "print(items)", "binds 'items'"),
    ("import math as torch", "torch.ones(1)", "binds 'torch'"),
    ("x = 1", "x = x + 1", "binds 'x'"),
    ("x.grad = None", "pass", "assigns to or deletes an attribute of x"),
    ("items[0] = 5", "pass", "assigns to or deletes a subscript of items"),
    ("items[0] += 5", "pass", "assigns to or deletes a subscript of items"),
    ("del items[0]", "pass", "assigns to or deletes a subscript of items"),
    ("x += 1", "pass", "augments x"),
    ("x.clamp_(0, 1)", "pass", "calls the in-place .clamp_() on x"),
    ("x.data.mul_(2)", "pass", "calls the in-place .mul_() on x"),
    ("items.append(2)", "pass", "calls the in-place .append() on items"),
    ("def g():\n    items.sort()\ng()", "pass", "calls the in-place .sort() on items"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 25 else None)
def test_the_dependency_check_fails_a_kept_cell_that_needs_a_solution(solution, after, expected):
    found = solution_dependencies(exercise(solution, after))
    assert any(expected in line for line in found), found


@pytest.mark.parametrize("solution, after", [
    ("t = x.clone()\nt.clamp_(0, 1)\nt[0] = 2\nt += 1\nown = []\nown.append(1)", "print(x)"),
    ("x = 2", "x = 5\nprint(x)"),                          # rebound before it is read
    ("x = 2", "x = 5"),                                     # never read again
    ("def h(v):\n    v.clamp_(0, 1)\n    w = []\n    w.append(v)\n    return w", "print(x)"),
    ("r = [k.append(1) for k in [[]]]", "print([k for k in items])"),
    ("print(x.sum(), items[0], f())", "print(x, items, f)"),   # reads only
])
def test_the_dependency_check_passes_a_solution_that_keeps_to_itself(solution, after):
    assert solution_dependencies(exercise(solution, after)) == []
