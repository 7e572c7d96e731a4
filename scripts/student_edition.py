"""Write the student edition of the book: every chapter notebook without its solutions and with
its outputs cleared (``make student`` writes it to ``_build/student/``).

Removed: ``{solution}`` blocks in Markdown cells, and everything between a gated
``{solution-start}`` and its ``{solution-end}`` (code cells included). The exercises stay.
Usage: ``python scripts/student_edition.py [OUT_DIR]``.

Tested by ``tests/test_student_edition.py`` (no solution text left, exercises kept, outputs
cleared, and statically that no kept cell depends on a removed solution cell, so that the book
build's run of the full chapters vouches for the edition) and ``tests/test_jupyterlab.py``
(Notebook 7 runs this edition's chapter 3, written by :func:`write_edition`).
"""
from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "book"
DIRECTIVES = ("solution", "solution-start", "solution-end")
SOLUTION_MARKERS = tuple(f"{{{d}}}" for d in DIRECTIVES)   # none is left in the edition
FENCE = re.compile(r"^(`{3,}|:{3,})\s*\{(" + "|".join(DIRECTIVES) + r")\}")


def _strip_markdown(text: str, in_gated: bool) -> tuple[str, bool]:
    """``text`` without its solution blocks; ``in_gated``: inside a gated solution on entry/exit."""
    kept, closing = [], None   # closing: the fence that ends the directive being dropped
    for line in text.splitlines():
        if closing is not None:                     # inside a {solution...} directive
            if line.strip() == closing:
                closing = None
            continue
        match = FENCE.match(line)
        if match:
            closing = match.group(1)
            kind = match.group(2)
            in_gated = {"solution-start": True, "solution-end": False}.get(kind, in_gated)
            continue
        if not in_gated:
            kept.append(line)
    return "\n".join(kept).strip("\n"), in_gated


def student_notebook(nb: dict) -> dict:
    """A copy of the notebook ``nb`` without solutions and outputs."""
    cells, in_gated = [], False
    for cell in nb["cells"]:
        cell = dict(cell)
        if cell["cell_type"] == "markdown":
            text, in_gated = _strip_markdown("".join(cell["source"]), in_gated)
            if not text:
                continue
            cell["source"] = text
        elif in_gated:
            continue
        if cell["cell_type"] == "code":
            cell.update(outputs=[], execution_count=None)
        cells.append(cell)
    return {**nb, "cells": cells}


def write_edition(out: Path) -> list[Path]:
    """Write every chapter of ``book/`` (and what the chapters read beside them) to ``out``."""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(BOOK, out, ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints"))
    written = []
    for path in sorted(BOOK.glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        target = out / path.name
        target.write_text(json.dumps(student_notebook(nb), indent=1, ensure_ascii=False) + "\n",
                          encoding="utf-8")
        written.append(target)
    return written


if __name__ == "__main__":
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "_build" / "student"
    notebooks = write_edition(folder)
    print(f"student edition: {len(notebooks)} notebooks without solutions in {folder}")
