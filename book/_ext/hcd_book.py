"""Sphinx extension with the book's two local tweaks.

1. No thebe: Jupyter Book 1 always loads sphinx-thebe, which (under Sphinx 7.4) writes its inline
   configuration script twice into every page, and the second copy throws
   ``Identifier 'THEBE_JS_URL' has already been declared``. This book launches no kernel from the
   page (no thebe button), so its scripts and style sheet are dropped from every page.
2. Static pages: the build sets ``HCD_STATIC_BUILD=1`` before any chapter's kernel starts (the
   kernels inherit the environment), so :func:`hcd_lite.widgets.live_explorer` shows a short note
   instead of controls that could not recompute without a kernel.
"""
import os


def _is_thebe(asset) -> bool:
    body = (getattr(asset, "attributes", None) or {}).get("body") or ""
    return "thebe" in (getattr(asset, "filename", None) or "") or "THEBE_JS_URL" in body


def _drop_thebe(app, pagename, templatename, context, doctree):
    for key in ("script_files", "css_files"):
        if key in context:
            context[key] = [a for a in context[key] if not _is_thebe(a)]


def setup(app):
    from hcd_lite.widgets import STATIC_BUILD_ENV

    os.environ[STATIC_BUILD_ENV] = "1"
    app.connect("html-page-context", _drop_thebe)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
