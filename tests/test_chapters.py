"""Every chapter executes, once per session, inside the book build (``book_html``), and keeps
the book's writing rules.

The build runs with ``execute_notebooks: inline`` and ``nb_execution_raise_on_error``, so a
failing cell already fails it; these tests say which chapter ran and how, one item each. The
static checks (no build needed): numbers enter sentences through ``{eval}`` only, no code cell is
tagged ``remove-cell`` (in inline mode such a cell never runs), and the code budgets of the
writing issue hold: hidden code at most ``HIDDEN_LINES_MAX`` lines in the whole book, no code cell
over ``CELL_LINES_MAX`` lines.
"""
import json
from pathlib import Path

import pytest

from book_build import DOCNAMES, EXECUTED, ROOT

CHAPTERS = [d for d in DOCNAMES if (ROOT / f"{d}.ipynb").is_file()]
HIDDEN = {"remove-input", "hide-input", "remove-cell", "hide-cell"}
HIDDEN_LINES_MAX = 150
CELL_LINES_MAX = 40


def code_cells(docname):
    nb = json.loads(Path(ROOT / f"{docname}.ipynb").read_text(encoding="utf-8"))
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def n_lines(cell):
    return len("".join(cell["source"]).splitlines())


def test_every_notebook_is_a_chapter_of_the_toc():
    """A notebook outside ``_toc.yml`` would never be built, hence never executed."""
    notebooks = {p.relative_to(ROOT).with_suffix("").as_posix()
                 for p in (ROOT / "book").glob("*.ipynb")}
    assert notebooks and notebooks <= set(CHAPTERS)


@pytest.mark.parametrize("docname", CHAPTERS)
def test_chapter_ran_every_cell_without_error(docname, book_html):
    nb = json.loads((EXECUTED / f"{docname}.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, f"{docname} has no code cells"
    not_run = [i for i, c in enumerate(code) if c.get("execution_count") is None]
    assert not not_run, f"{docname}: code cells {not_run} did not run"
    errors = [o for c in code for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors, f"{docname}: {errors[0]['ename']}: {errors[0]['evalue']}"
    html = (book_html / f"{docname}.html").read_text()
    assert "{glue:" not in html and "{eval}" not in html, f"{docname}: an unrendered role"


@pytest.mark.parametrize("docname", CHAPTERS)
def test_chapter_follows_the_writing_rules(docname):
    text = Path(ROOT / f"{docname}.ipynb").read_text(encoding="utf-8")
    assert "{glue:" not in text and "glue_all(" not in text, \
        f"{docname}: numbers enter sentences with {{eval}}, not glue"
    kernel = json.loads(text)["metadata"]["kernelspec"]["name"]
    assert kernel == "hcd-lite", f"{docname} names kernel {kernel!r}, not the project's hcd-lite"
    cells = code_cells(docname)
    removed = [i for i, c in enumerate(cells) if "remove-cell" in c["metadata"].get("tags", [])]
    assert not removed, f"{docname}: code cells {removed} tagged remove-cell never run inline"
    long = [(i, n_lines(c)) for i, c in enumerate(cells) if n_lines(c) > CELL_LINES_MAX]
    assert not long, f"{docname}: code cells over {CELL_LINES_MAX} lines (index, lines): {long}"


def test_the_book_hides_little_code():
    hidden = {d: sum(n_lines(c) for c in code_cells(d)
                     if HIDDEN & set(c["metadata"].get("tags", []))) for d in CHAPTERS}
    assert sum(hidden.values()) <= HIDDEN_LINES_MAX, f"hidden code lines per chapter: {hidden}"
