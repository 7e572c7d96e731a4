"""``make student``: the chapters without solutions or outputs, and nothing they still run needs a
solution cell."""
import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from student_edition import student_notebook  # noqa: E402

SOLUTION_MARKERS = ("{solution}", "{solution-start}", "{solution-end}")


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


def names(cells, ctx):
    """Names the code ``cells`` bind (``ast.Store``, defs, imports) or read (``ast.Load``)."""
    found = set()
    for cell in cells:
        tree = ast.parse("".join(cell["source"]))
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ctx):
                found.add(node.id)
            elif ctx is ast.Store and isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                found.add(node.name)
            elif ctx is ast.Store and isinstance(node, (ast.Import, ast.ImportFrom)):
                found |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return found


@pytest.mark.parametrize("chapter", sorted((REPO / "book").glob("*.ipynb")), ids=lambda p: p.stem)
def test_student_chapter_needs_nothing_its_solutions_defined(chapter):
    """The student edition runs as the book's build runs the chapter (which executes every
    chapter), minus the solution cells: so no kept cell may read a name that only a removed
    solution cell binds."""
    nb = json.loads(chapter.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    kept = [c for c in student_notebook(nb)["cells"] if c["cell_type"] == "code"]
    removed = [c for c in code if "".join(c["source"]) not in
               {"".join(k["source"]) for k in kept}]
    lost = names(removed, ast.Store) - names(kept, ast.Store)
    assert not lost & names(kept, ast.Load), \
        f"{chapter.name}: kept cells read {sorted(lost & names(kept, ast.Load))}, bound only " \
        "in solution cells"
