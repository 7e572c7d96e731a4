"""The Python shown inside ``{solution}`` blocks is Markdown: the book build never runs it, so
these static checks keep it from rotting when the package changes. For every such code block:

* it parses;
* every name it reads is bound in the block, by a code cell of its chapter, or is a builtin;
* every attribute it takes of a module or object the chapter imports exists (``hl.FAST``,
  ``hl.book.PAPER_TABLE1``, ``np.median``);
* every keyword it passes to an imported function is one that function accepts (for the
  optimisers' ``**overrides``: a field of :class:`hcd_lite.options.Options`).

Solutions fenced with ``{solution-start}`` / ``{solution-end}`` are code cells that the build
executes, so they are not checked here.
"""
import ast
import builtins
import dataclasses
import importlib
import inspect
import json
import re

import pytest

from book_build import DOCNAMES, ROOT
from hcd_lite.options import Options

CHAPTERS = [d for d in DOCNAMES if (ROOT / f"{d}.ipynb").is_file()]
SOLUTION = re.compile(r"^(`{3,}|:{3,})\{solution\}[^\n]*\n(.*?)^\1[ \t]*$", re.S | re.M)
PYTHON = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
OPTION_FIELDS = {f.name for f in dataclasses.fields(Options)}


def bound_names(tree) -> set:
    """Every name a tree binds anywhere (assignments, loops, imports, defs, arguments)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def imported_objects(tree) -> dict:
    """``{name: object}`` for the imports of a tree (resolved by importing them)."""
    objects = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                module = importlib.import_module(a.name)
                objects[a.asname or a.name.split(".")[0]] = (
                    module if a.asname else importlib.import_module(a.name.split(".")[0]))
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            module = importlib.import_module(node.module)
            for a in node.names:
                objects[a.asname or a.name] = getattr(module, a.name)
    return objects


def resolve(node, objects):
    """The object an expression like ``hl.book.PAPER_TABLE1`` names, or None if it is not a
    chain of attributes on an imported name; raises AttributeError for a missing attribute."""
    if isinstance(node, ast.Name):
        return objects.get(node.id)
    if isinstance(node, ast.Attribute):
        base = resolve(node.value, objects)
        if base is None:
            return None
        if not hasattr(base, node.attr):
            raise AttributeError(f"{ast.unparse(node.value)} has no attribute {node.attr!r}")
        return getattr(base, node.attr)
    return None


def problems(code: str, context_tree) -> list[str]:
    """What is wrong with a solution's ``code`` in a chapter whose code cells are
    ``context_tree``; an empty list when nothing is."""
    try:
        tree = ast.parse(code)
    except SyntaxError as e:
        return [f"syntax error: {e}"]
    known = bound_names(context_tree) | bound_names(tree) | set(dir(builtins))
    objects = {**imported_objects(context_tree), **imported_objects(tree)}
    found = [f"undefined name {n.id!r}" for n in ast.walk(tree)
             if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in known]
    for node in ast.walk(tree):
        try:
            target = resolve(node, objects) if isinstance(node, ast.Attribute) else None
            if isinstance(node, ast.Call):
                target = resolve(node.func, objects)
        except AttributeError as e:
            found.append(str(e))
            continue
        if not isinstance(node, ast.Call) or not callable(target):
            continue
        try:
            params = inspect.signature(target).parameters
        except (TypeError, ValueError):
            continue
        allowed = {p.name for p in params.values()
                   if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        var_kw = [p.name for p in params.values() if p.kind == p.VAR_KEYWORD]
        if var_kw == ["overrides"]:                     # the optimisers: fields of Options
            allowed |= OPTION_FIELDS
        elif var_kw:
            continue
        found += [f"{ast.unparse(node.func)}() takes no keyword {k.arg!r}"
                  for k in node.keywords if k.arg and k.arg not in allowed]
    return sorted(set(found))


def chapter(docname):
    nb = json.loads((ROOT / f"{docname}.ipynb").read_text(encoding="utf-8"))
    cells = ["".join(c["source"]) for c in nb["cells"]]
    code = "\n".join(s for c, s in zip(nb["cells"], cells) if c["cell_type"] == "code")
    blocks = [b for c, s in zip(nb["cells"], cells) if c["cell_type"] == "markdown"
              for m in SOLUTION.finditer(s) for b in PYTHON.findall(m.group(2))]
    return ast.parse(code), blocks


@pytest.mark.parametrize("docname", CHAPTERS)
def test_solution_code_names_what_exists(docname):
    context, blocks = chapter(docname)
    for code in blocks:
        assert not problems(code, context), f"{docname}: {problems(code, context)} in\n{code}"


def test_the_check_finds_solution_blocks():
    assert sum(len(chapter(d)[1]) for d in CHAPTERS) >= 10


CONTEXT = ast.parse("import hcd_lite as hl\nfrom hcd_lite.plotting import show_images\ny = 1")


@pytest.mark.parametrize("code, problem", [
    ("print(z)", "undefined name 'z'"),
    ("hl.hcd_fast(y)", "hl has no attribute 'hcd_fast'"),
    ("hl.book.PAPER_TABLE9", "hl.book has no attribute 'PAPER_TABLE9'"),
    ("hl.hcd(y, None, steps=3)", "hl.hcd() takes no keyword 'steps'"),
    ("show_images({}, colour='red')", "show_images() takes no keyword 'colour'"),
    ("for i in range(3)\n    print(i)", "syntax error"),
])
def test_the_check_fails_on_rotten_code(code, problem):
    assert any(p.startswith(problem) for p in problems(code, CONTEXT))


@pytest.mark.parametrize("code", [
    "hl.hcd(y, None, steps_hr=2, eps=0.1, progress=False)",   # eps: an Options field
    "r = hl.FAST.scaled(2)\nprint(r.eps, hl.book.PAPER_TABLE1)",
    "def f(a, *, b=2):\n    return [a + b + k for k in range(y)]",
])
def test_the_check_passes_sound_code(code):
    assert problems(code, CONTEXT) == []
