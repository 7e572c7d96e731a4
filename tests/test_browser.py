"""The built HTML book in a real browser (Chromium driven by Playwright).

For every page listed in ``_toc.yml`` (root and chapters, parsed with the same
``sphinx_external_toc`` that Jupyter Book uses, so new chapters are covered as they land):

* no request leaves 127.0.0.1 (external requests are recorded, aborted and fail the test);
* no local resource answers 404 (or any error) and no JavaScript error is raised or logged;
* every ``<img>`` has loaded (``naturalWidth > 0``) after scrolling to the bottom;
* every static slider (``div.hcd-slider`` from ``hcd_lite.widgets.static_slider``) reacts to the
  keyboard like a user's: each range input moved in turn changes the image and the label;
* no page holds ipywidgets state: without a kernel such controls could not recompute, so the
  book build turns each live explorer into a short note (``hcd_lite.widgets.live_explorer``);
* every link pointing inside the site answers 200 and every ``#fragment`` names an id of its
  target page.

A full-page screenshot of each page goes to ``_build/screenshots/``.

The HTML comes from the session's one book build (``book_html`` in ``conftest.py``, see
``book_build.py``), which also executes every chapter. ``HCD_BOOK_ROOT`` points the test at
another book folder laid out like the repository (used to develop it on a scratch book).

Needs /usr/bin/chromium (``make browser-deps``); without it the test skips, except under CI
(``CI`` set), where it fails.
"""
from __future__ import annotations

import html.parser
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from book_build import DOCNAMES, ROOT
from local_server import free_port, stop

SCREENSHOTS = ROOT / "_build" / "screenshots"

WIDGET_SELECTOR = ('script[type="application/vnd.jupyter.widget-state+json"], '
                   'script[type="application/vnd.jupyter.widget-view+json"]')

# JavaScript errors (uncaught, or console.error) tolerated: exact substrings of third-party
# messages that are unavoidable with our pinned toolchain and harmless. Keep every entry narrow
# and explained; errors from our own scripts (hcd-slider, widget rendering) are never tolerated.
JS_ERROR_WHITELIST = (
    # pydata-sphinx-theme 0.17 (under sphinx-book-theme 1.3) on a first visit (empty
    # localStorage): the page sets data-mode="" and the theme logs this, then uses "auto",
    # which is the intended default.
    "Got invalid theme mode: . Resetting to auto.",
)


@pytest.fixture(scope="session")
def server(book_html):
    """``python -m http.server`` on a free port of 127.0.0.1; yields the base URL."""
    for _ in range(5):
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind",
                                 "127.0.0.1", "--directory", str(book_html)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline, ready = time.monotonic() + 15, False
        while not ready and time.monotonic() < deadline and proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    ready = True
            except OSError:
                time.sleep(0.1)
        if ready:
            break
        proc.kill()  # port taken meanwhile, or too slow: try another port
        proc.wait()
    else:
        pytest.fail("could not start python -m http.server")
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        stop(proc)


# ------------------------------------------------------------------------- link target checks

class _Ids(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if v is not None and (k == "id" or (k == "name" and tag == "a")):
                self.ids.add(v)


class LinkChecker:
    """HTTP status and ids of local pages, fetched once per session."""

    def __init__(self):
        self._status: dict[str, int] = {}
        self._ids: dict[str, set[str]] = {}

    def status(self, url: str) -> int:
        if url not in self._status:
            try:
                with urllib.request.urlopen(url, timeout=10) as r:
                    self._status[url] = r.status
                    if "html" in r.headers.get("Content-Type", ""):
                        p = _Ids()
                        p.feed(r.read().decode("utf-8", "replace"))
                        self._ids[url] = p.ids
            except urllib.error.HTTPError as e:
                self._status[url] = e.code
        return self._status[url]

    def ids(self, url: str) -> set[str] | None:
        return self._ids.get(url) if self.status(url) == 200 else None


@pytest.fixture(scope="session")
def links():
    return LinkChecker()


# ---------------------------------------------------------------------------- page-side JS

# Scroll to the bottom in steps so that lazy content is requested, then make any image still
# marked lazy (e.g. inside a collapsed block) load eagerly.
SCROLL_JS = """async () => {
  const step = Math.max(200, window.innerHeight / 2);
  for (let y = 0; y < document.documentElement.scrollHeight; y += step) {
    window.scrollTo(0, y);
    await new Promise(r => setTimeout(r, 30));
  }
  window.scrollTo(0, document.documentElement.scrollHeight);
  document.querySelectorAll('img[loading="lazy"]').forEach(i => { i.loading = "eager"; });
}"""

IMAGES_DONE_JS = "() => Array.from(document.images).every(i => i.complete)"

BROKEN_IMAGES_JS = """() => Array.from(document.images)
  .filter(i => !(i.naturalWidth > 0))
  .map(i => (i.currentSrc || i.getAttribute('src') || '(no src)').slice(0, 120))"""

# ---------------------------------------------------------------------------------- the test

def _is_local(url: str, base: str) -> bool:
    return url.startswith(base)


def _external(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme not in ("data", "blob", "about", "chrome-error") and \
        parts.hostname != "127.0.0.1"


@pytest.mark.parametrize("docname", DOCNAMES)
def test_page(docname, browser, server, links):
    url = urllib.parse.urljoin(server, f"{docname}.html")
    external, bad_local, js_errors, requested = [], [], [], []
    problems = []  # every check reports here; the test fails once, listing them all

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)

    def route(r):
        if _external(r.request.url):
            external.append(f"{r.request.method} {r.request.url}")
            r.abort()  # keep the test offline and fast; the request is reported below
        else:
            r.continue_()

    def js_error(text):
        if not any(w in text for w in JS_ERROR_WHITELIST):
            js_errors.append(text)

    context.route("**/*", route)
    page.on("request", lambda r: requested.append(r.url))
    page.on("websocket", lambda ws: external.append(f"websocket {ws.url}")
            if _external(ws.url) else None)
    page.on("response", lambda r: bad_local.append(f"{r.status} {r.url}")
            if r.status >= 400 and _is_local(r.url, server) else None)
    page.on("requestfailed", lambda r: bad_local.append(f"failed ({r.failure}) {r.url}")
            if _is_local(r.url, server) else None)
    page.on("pageerror", lambda e: js_error(f"uncaught: {e}"))
    # Chromium may probe /favicon.ico by itself (the book has no favicon): not a page resource.
    page.on("console", lambda m: js_error(f"console.error: {m.text} @ {m.location}")
            if m.type == "error" and m.location.get("url") != server + "favicon.ico" else None)

    try:
        response = page.goto(url, wait_until="load")
        assert response is not None and response.status == 200, f"{url}: {response}"

        # ---- let lazy images load, then the screenshot (as a reader sees it)
        page.evaluate(SCROLL_JS)
        try:
            page.wait_for_function(IMAGES_DONE_JS, timeout=30_000)
        except Exception:
            pass  # reported below
        page.wait_for_load_state("networkidle")
        page.evaluate("() => window.scrollTo(0, 0)")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        # animations="disabled": without it the theme's transitions, restarted by the resize
        # to full height, were caught half-way (sidebar missing, content shifted left).
        page.screenshot(path=str(SCREENSHOTS / (docname.replace("/", "__") + ".png")),
                        full_page=True, animations="disabled")

        # ---- images
        broken = page.evaluate(BROKEN_IMAGES_JS)
        if broken:
            problems.append(f"images that did not load: {broken}")

        # ---- no dead controls: live explorers are notes in the static book
        if page.locator(WIDGET_SELECTOR).count():
            problems.append("ipywidgets state in the page: a live control that cannot recompute "
                            "without a kernel (use hcd_lite.widgets.live_explorer)")

        # ---- static sliders: move every range input like a user, image and label must change
        for k, root in enumerate(page.locator("div.hcd-slider").all()):
            img, label = root.locator("img").first, root.locator(".hcd-slider-label").first
            inputs = root.locator('input[type="range"]').all()
            if not inputs:
                problems.append(f"static slider {k} has no range input")
            for inp in inputs:
                name = inp.get_attribute("aria-label")
                before = (img.get_attribute("src"), label.text_content())
                value, top = int(inp.input_value()), int(inp.get_attribute("max"))
                inp.scroll_into_view_if_needed()
                inp.focus()
                inp.press("End" if value < top else "Home")
                page.wait_for_timeout(50)
                moved = int(inp.input_value())
                after = (img.get_attribute("src"), label.text_content())
                where = f"static slider {k}, input {name!r} {value}->{moved}"
                if moved == value:
                    problems.append(f"{where}: the input did not move")
                elif after[0] == before[0]:
                    problems.append(f"{where}: the image did not change")
                elif after[1] == before[1]:
                    problems.append(f"{where}: the label stayed {before[1]!r} (make the labels "
                                    "of neighbouring frames differ)")

        # ---- links inside the site answer 200; fragments name an existing id
        hrefs = page.evaluate("() => Array.from(document.querySelectorAll('a[href]'), a => a.href)")
        for href in sorted(set(hrefs)):
            if not _is_local(href, server):
                continue
            target, _, fragment = href.partition("#")
            status = links.status(target)
            if status != 200:
                problems.append(f"internal link answers {status}: {href}")
            elif fragment:
                ids = links.ids(target)
                frag = urllib.parse.unquote(fragment)
                if ids is not None and frag not in ids:
                    problems.append(f"internal link to a missing id {frag!r}: {href}")

        # ---- network and JavaScript verdicts (after the interactions above)
        page.wait_for_load_state("networkidle")
        external += [f"GET {u}" for u in requested
                     if _external(u) and not any(u in e for e in external)]
        if external:
            problems.append(f"requests left 127.0.0.1: {external}")
        if bad_local:
            problems.append(f"local resources failed: {bad_local}")
        if js_errors:
            problems.append(f"JavaScript errors: {js_errors}")
        assert not problems, f"{docname} ({url}):\n  - " + "\n  - ".join(problems)
    finally:
        context.close()


def test_vendored_js_present():
    """What _config.yml points at (MathJax) is in book/_vendor, with its licence, and no root
    _static/ folder exists. Runs without a browser or a build."""
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]["config"]
    static = [ROOT / p for p in config["html_static_path"]]
    assert all(p.is_dir() and p.name != "_static" for p in static), static
    rel = config["mathjax_path"]
    assert "://" not in rel, f"{rel} is not served by the book"
    found = [d / rel for d in static if (d / rel).is_file()]
    assert found, f"{rel} not found in {static}"
    assert (found[0].parents[1] / "LICENSE").is_file(), f"no LICENSE for {found[0]}"
    # Jupyter Book: if a root _static/ folder exists, every .js/.css of every html_static_path
    # folder (book/_vendor included: MathJax's extensions) goes into every page.
    assert not (ROOT / "_static").is_dir(), \
        "a root _static/ makes Jupyter Book inject book/_vendor's JS into every page"
