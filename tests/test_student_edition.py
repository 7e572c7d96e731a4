"""``make student``: the chapters without solutions or outputs; each edited chapter still runs."""
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from student_edition import student_notebook, write_edition  # noqa: E402

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


def chapters_with_solution_code():
    """Chapters whose student edition lost code cells (only those could stop running)."""
    def n_code(nb):
        return sum(c["cell_type"] == "code" for c in nb["cells"])
    found = []
    for path in sorted((REPO / "book").glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        if n_code(student_notebook(nb)) < n_code(nb):
            found.append(path.name)
    return found


@pytest.mark.parametrize("name", chapters_with_solution_code())
def test_student_chapter_runs_without_its_solution_code(name, tmp_path, monkeypatch):
    write_edition(tmp_path)
    monkeypatch.setenv("HCD_STATIC_BUILD", "1")     # no live widgets in a headless run
    nb = nbformat.read(tmp_path / name, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
