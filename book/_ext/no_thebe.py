"""Sphinx extension: keep sphinx-thebe's scripts out of the pages.

Jupyter Book 1 always loads sphinx-thebe, which (under Sphinx 7.4) writes its inline
configuration script twice into every page, and the second copy throws
``Identifier 'THEBE_JS_URL' has already been declared``. This book launches no kernel from the
page (no thebe button), so its scripts and style sheet are dropped from every page.
"""


def _is_thebe(asset) -> bool:
    body = (getattr(asset, "attributes", None) or {}).get("body") or ""
    return "thebe" in (getattr(asset, "filename", None) or "") or "THEBE_JS_URL" in body


def _drop_thebe(app, pagename, templatename, context, doctree):
    for key in ("script_files", "css_files"):
        if key in context:
            context[key] = [a for a in context[key] if not _is_thebe(a)]


def setup(app):
    app.connect("html-page-context", _drop_thebe)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
