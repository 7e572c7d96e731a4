"""The built HTML book in a real browser (Chromium driven by Playwright).

For every page listed in ``_toc.yml`` (root and chapters, parsed with the same
``sphinx_external_toc`` that Jupyter Book uses, so new chapters are covered as they land):

* no request leaves 127.0.0.1 (external requests are recorded, aborted and fail the test);
* no local resource answers 404 (or any error) and no JavaScript error is raised or logged;
* every ``<img>`` has loaded (``naturalWidth > 0``) after scrolling to the bottom;
* every static slider (``div.hcd-slider`` from ``hcd_lite.widgets.static_slider``) reacts to the
  keyboard like a user's: each range input moved in turn changes the image and the label;
* pages holding ipywidgets state render the widgets (sliders visible, from the vendored
  require.js / html-manager in ``_static/``, no CDN) and each live widget has, within
  three blocks of it, an admonition containing the words "running kernel"; pages without
  widget state do not load that JavaScript at all;
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
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from book_build import DOCNAMES, ROOT

SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")

# Scripts myst-nb adds to pages with widget state (see nb_ipywidgets_js in _config.yml).
WIDGET_JS = ("_static/requirejs/require.js", "_static/hcd/widget-setup.js",
             "_static/html-manager/embed-amd.js")
STATE_SELECTOR = 'script[type="application/vnd.jupyter.widget-state+json"]'
VIEW_SELECTOR = 'script[type="application/vnd.jupyter.widget-view+json"]'
KERNEL_NOTE_WORDS = "running kernel"

# JavaScript errors (uncaught, or console.error) tolerated: exact substrings of third-party
# messages that are unavoidable with our pinned toolchain and harmless. Keep every entry narrow
# and explained; errors from our own scripts (hcd-slider, widget rendering) are never tolerated.
JS_ERROR_WHITELIST = (
    # pydata-sphinx-theme 0.17 (under sphinx-book-theme 1.3) on a first visit (empty
    # localStorage): the page sets data-mode="" and the theme logs this, then uses "auto",
    # which is the intended default.
    "Got invalid theme mode: . Resetting to auto.",
)


def _no_browser(reason: str):
    if IN_CI:
        pytest.fail(f"{reason} (CI is set: the browser test must run in CI; `make browser-deps`)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def server(book_html):
    """``python -m http.server`` on a free port of 127.0.0.1; yields the base URL."""
    for _ in range(5):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
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
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        _no_browser(f"{CHROMIUM} not found (install it with `make browser-deps`)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - playwright is pinned in requirements.txt
        _no_browser(f"playwright is not importable: {exc}")
    with sync_playwright() as pw:
        # Playwright gives every launch a fresh temporary user-data dir (removed on close).
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


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

# Each widget view: has html-manager rendered it, is it visible, is a kernel note near it?
WIDGET_VIEWS_JS = """(words) => {
  const near = (cell) => {
    const isNote = (el) => el && [el, ...el.querySelectorAll('.admonition')].some(
      a => a.classList.contains('admonition') && a.textContent.toLowerCase().includes(words));
    if (isNote(cell)) return true;
    for (const dir of ['previousElementSibling', 'nextElementSibling']) {
      let el = cell;
      for (let k = 0; k < 3 && el; k++) { el = el[dir]; if (isNote(el)) return true; }
    }
    return false;
  };
  const views = 'script[type="application/vnd.jupyter.widget-view+json"]';
  return Array.from(document.querySelectorAll(views)).map(s => {
      const area = s.previousElementSibling;
      const rendered = !!(area && area.classList.contains('widget-subarea')
                          && area.querySelector('.jupyter-widgets'));
      const box = rendered ? area.getBoundingClientRect() : null;
      const cell = s.closest('.cell') || s.parentElement;
      return {id: JSON.parse(s.textContent).model_id, rendered,
              visible: !!box && box.width > 0 && box.height > 0, note: near(cell)};
    });
}"""

ALL_VIEWS_RENDERED_JS = """() => Array.from(document.querySelectorAll(
    'script[type="application/vnd.jupyter.widget-view+json"]')).every(s => {
  const a = s.previousElementSibling;
  return a && a.classList.contains('widget-subarea') && a.querySelector('.jupyter-widgets');
})"""


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

        # ---- let widgets render and lazy images load, then the screenshot (as a reader sees it)
        has_state = page.locator(STATE_SELECTOR).count() > 0
        n_views = page.locator(VIEW_SELECTOR).count()
        if n_views:
            try:
                page.wait_for_function(ALL_VIEWS_RENDERED_JS, timeout=30_000)
            except Exception:
                pass  # reported per view below
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

        # ---- ipywidgets: rendered from the vendored JS, with the kernel note next to them
        if n_views:
            if not has_state:
                problems.append("widget views but no embedded widget state")
            views = page.evaluate(WIDGET_VIEWS_JS, KERNEL_NOTE_WORDS)
            if not all(v["rendered"] and v["visible"] for v in views):
                problems.append(f"ipywidgets not rendered or not visible: {views}")
            missing_note = [v["id"] for v in views if not v["note"]]
            if missing_note:
                problems.append(
                    f"live widget(s) {missing_note} without an admonition containing "
                    f"'{KERNEL_NOTE_WORDS}' within 3 blocks (say that they need a running "
                    "kernel and point to the static slider)")
        if has_state:
            state = json.loads(page.locator(STATE_SELECTOR).first.text_content())
            if any(m.get("model_name", "").endswith("SliderModel")
                   for m in state.get("state", {}).values()):
                sliders = page.locator(".jupyter-widgets.widget-slider")
                if not (sliders.count() > 0 and sliders.first.is_visible()):
                    problems.append("the widget state has sliders but none is visible")
        for js in WIDGET_JS:
            loaded = [u for u in requested if urllib.parse.urlsplit(u).path.endswith(js)]
            if has_state and not loaded:
                problems.append(f"widget page did not load the local {js}")
            if loaded and not has_state:
                problems.append(f"{js} loaded on a page without widgets (a root _static/ "
                                "folder makes Jupyter Book inject book/_vendor JS everywhere)")

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
    """What _config.yml points at (widget JS, MathJax) is in book/_vendor, with its licence, and
    no root _static/ folder exists. Runs without a browser or a build."""
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]["config"]
    static = [ROOT / p for p in config["html_static_path"]]
    assert all(p.is_dir() and p.name != "_static" for p in static), static

    def find(rel):
        assert "://" not in rel, f"{rel} is not served by the book"
        found = [d / rel for d in static if (d / rel).is_file()]
        assert found, f"{rel} not found in {static}"
        return found[0]

    js = list(config["nb_ipywidgets_js"])
    assert [f"_static/{p}" for p in js] == list(WIDGET_JS)
    for rel in js:
        path = find(rel)
        if not rel.startswith("hcd/"):  # hcd/ is our own code, the rest is vendored
            assert (path.parent / "LICENSE").is_file(), f"no LICENSE next to {path}"
    mathjax = find(config["mathjax_path"])
    assert (mathjax.parents[1] / "LICENSE").is_file(), f"no LICENSE for {mathjax}"
    # Jupyter Book: if a root _static/ folder exists, every .js/.css of every html_static_path
    # folder (book/_vendor included: MathJax extensions, require.js, ...) goes into every page.
    assert not (ROOT / "_static").is_dir(), \
        "a root _static/ makes Jupyter Book inject book/_vendor's JS into every page"
