"""Every chapter executes, once per session, inside the book build (``book_html``).

The build runs with ``execute_notebooks: force`` and ``allow_errors: false`` under ``-W``, so a
failing cell already fails it; these tests say which chapter ran and how, one item each.
"""
import json

import pytest

from book_build import DOCNAMES, EXECUTED, ROOT

CHAPTERS = [d for d in DOCNAMES if (ROOT / f"{d}.ipynb").is_file()]


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
