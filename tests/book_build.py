"""The one book build of a test session: it executes every chapter (the notebooks' execution
test) and gives the HTML that the browser test reads.

The book is built (``jupyter-book build . -W -n --keep-going --all``) when ``_build/html`` is
missing a page, when the last build failed (no ``_build/.book-build-ok``, which this module and
``make book`` write after a successful build), or when the build is older than any chapter of
the toc, ``_toc.yml``, ``_config.yml``, asset of ``book/`` (vendored JS, bib, images) or
``hcd_lite`` source. ``HCD_BOOK_ROOT`` points at another book folder laid out like the
repository.
"""
from __future__ import annotations

import fnmatch
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOT = Path(os.environ.get("HCD_BOOK_ROOT", REPO)).resolve()
HTML = ROOT / "_build" / "html"
EXECUTED = ROOT / "_build" / "jupyter_execute"


# --------------------------------------------------------------------------- pages from _toc.yml

def toc_docnames(root: Path = ROOT) -> list[str]:
    """Every document of ``_toc.yml`` (root first, in toc order), ``glob:`` entries expanded."""
    from sphinx_external_toc.parsing import parse_toc_yaml

    site = parse_toc_yaml(root / "_toc.yml")
    names = list(site.keys())
    if site.globs():
        sources = []
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if not d.startswith((".", "_build")) and d != "venv"]
            rel = Path(folder).relative_to(root)
            sources += [(rel / f).with_suffix("").as_posix() for f in files
                        if f.endswith((".md", ".ipynb", ".rst"))]
        for pattern in site.globs():
            names += sorted(s for s in sources
                            if fnmatch.fnmatchcase(s, pattern) and s not in names)
    return names


DOCNAMES = toc_docnames()


# ---------------------------------------------------------------------------------- the build

def _sources(root: Path, docnames: list[str]) -> list[Path]:
    """What the HTML depends on: the toc's documents (not other notebooks of book/, which are
    not built), the configuration, book/'s other assets (vendored JS, bib, images) and hcd_lite."""
    found = [root / "_toc.yml", root / "_config.yml"]
    found += [root / f"{d}{ext}" for d in docnames for ext in (".ipynb", ".md", ".rst")]
    for folder, patterns in ((root / "book", ("*.bib", "*.js", "*.css", "*.png", "*.jpg",
                                                "*.svg", "*.woff2")),
                             (root / "hcd_lite", ("*.py",))):
        for pattern in patterns:
            found += [p for p in folder.rglob(pattern)
                      if ".ipynb_checkpoints" not in p.parts and "__pycache__" not in p.parts]
    return [p for p in found if p.is_file()]


# Written after a successful build only (here and by `make book`), removed before each build:
# the HTML left by a failed build (--keep-going writes it) is never taken as fresh.
BUILD_OK = ROOT / "_build" / ".book-build-ok"


def _stale(root: Path, docnames: list[str]) -> str | None:
    pages = [root / "_build" / "html" / f"{d}.html" for d in docnames]
    missing = [p for p in pages if not p.is_file()]
    if missing:
        return f"missing {missing[0].relative_to(root)}"
    stamp = root / "_build" / BUILD_OK.name
    if not stamp.is_file():
        return f"no {stamp.relative_to(root)}: the last build failed or was not made here"
    built = stamp.stat().st_mtime
    newer = [p for p in _sources(root, docnames) if p.stat().st_mtime > built]
    if newer:
        return f"{newer[0].relative_to(root)} is newer than the HTML"
    return None


def ensure_built() -> str | None:
    """Build the book unless the HTML is fresh; ``None`` on success, else the end of the
    build's log."""
    reason = _stale(ROOT, DOCNAMES)
    if reason:
        jb = Path(sys.executable).with_name("jupyter-book")
        cmd = [str(jb) if jb.exists() else "jupyter-book",
               "build", ".", "-W", "-n", "--keep-going", "--all"]
        print(f"\nbuilding the book ({reason}): {' '.join(cmd)}", flush=True)
        BUILD_OK.unlink(missing_ok=True)
        t0 = time.monotonic()
        proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=3600)
        print(f"build took {time.monotonic() - t0:.0f} s", flush=True)
        if proc.returncode != 0:
            log = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout)  # Sphinx colours its log
            return f"jupyter-book build failed (exit {proc.returncode}), end of its log:\n" \
                + log[-8000:]
        BUILD_OK.touch()
        still = _stale(ROOT, DOCNAMES)
        assert still is None, f"after a successful build the HTML is still stale: {still}"
    return None


