"""A student's session in JupyterLab and in Notebook 7, driven in Chromium by Playwright.

JupyterLab starts from ``.venv`` (this interpreter) on a free port of 127.0.0.1, on a copy of
``book/`` (JupyterLab saves what it runs); the same server serves Notebook 7. In each front end
the test opens a chapter with a live explorer, runs all its cells with the project kernel, and
checks that

* the prose reads as in the HTML book: every ``{eval}`` expression shows its value (none is left
  as code) and no MyST role shows raw;
* the explorer responds to the mouse (dragging a slider) and to the keyboard (a value typed into
  the box beside another slider, and in JupyterLab arrow keys on that slider: Notebook 7 keeps
  arrow keys from ipywidgets sliders): each time its image and its PSNR text change.

The server is stopped at the end. Uses the session's Chromium (``browser`` in ``conftest.py``).
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from local_server import free_port, stop

REPO = Path(__file__).resolve().parents[1]
CHAPTER = "03_collaborative_lr.ipynb"
EXPLORER = ".hcd-live-explorer"           # the class live_explorer gives its widget box
EVAL = re.compile(r"\{eval\}`([^`]+)`")
# Where each front end opens a notebook (both are served by the one server).
FRONTENDS = {"JupyterLab": "lab/tree/{}", "Notebook 7": "notebooks/{}"}
# Every cell in the DOM (JupyterLab 4 leaves off-screen cells out by default).
NOTEBOOK_SETTINGS = {"windowingMode": "none"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on a copy of book/; yields (base URL, token, book copy); stopped afterwards."""
    root = tmp_path_factory.mktemp("lab")
    shutil.copytree(REPO / "book", root / "book",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    settings = root / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps(NOTEBOOK_SETTINGS))
    env = {k: v for k, v in os.environ.items() if k != "HCD_STATIC_BUILD"}
    env.update(JUPYTERLAB_SETTINGS_DIR=str(root / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(root / "workspaces"),
               JUPYTER_RUNTIME_DIR=str(root / "runtime"))
    port, token = free_port(), secrets.token_hex(16)
    log = (root / "lab.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root / 'book'}", "--LabApp.expose_app_in_browser=True",
         "--JupyterNotebookApp.expose_app_in_browser=True"]
        + (["--allow-root"] if os.geteuid() == 0 else []),
        stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not start:\n" + (root / "lab.log").read_text())
                time.sleep(0.5)
        yield base, token, root / "book"
    finally:
        stop(server)
        log.close()


def _explorer_state(page):
    return page.evaluate(f"""() => {{
        const box = document.querySelector('{EXPLORER}');
        const img = box && box.querySelector('img');
        const label = box && box.querySelector('.widget-html-content');
        return [img ? img.src : '', label ? label.textContent : ''];
    }}""")


def _wait_for_change(page, before, what):
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        now = _explorer_state(page)
        if now[0] != before[0] and now[1] != before[1] and now[1]:
            return now
        page.wait_for_timeout(250)
    pytest.fail(f"the explorer did not redraw after {what}: still {before[1]!r}")


@pytest.mark.parametrize("frontend", FRONTENDS)
def test_a_chapter_reads_and_its_explorer_responds(lab, browser, frontend):
    base, token, book = lab
    nb = json.loads((book / CHAPTER).read_text(encoding="utf-8"))
    expressions = {e for c in nb["cells"] if c["cell_type"] == "markdown"
                   for e in EVAL.findall("".join(c["source"]))}
    assert expressions, f"{CHAPTER} shows no computed number in its prose"
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(f"{base}/{FRONTENDS[frontend].format(CHAPTER)}?token={token}")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        page.wait_for_function("window.jupyterapp && window.jupyterapp.shell.currentWidget"
                               " && window.jupyterapp.shell.currentWidget.sessionContext"
                               " && window.jupyterapp.shell.currentWidget.sessionContext.session",
                               timeout=120_000)
        kernel = page.evaluate("window.jupyterapp.shell.currentWidget.sessionContext.session"
                               ".kernel.name")
        assert kernel == nb["metadata"]["kernelspec"]["name"] == "hcd-lite"
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        page.wait_for_selector(f"{EXPLORER} img[src]", timeout=600_000)
        page.wait_for_function("window.jupyterapp.shell.currentWidget.sessionContext.session"
                               ".kernel.status === 'idle'", timeout=600_000)

        # jupyterlab-myst renders Markdown cells into div.myst; an expression it has no value
        # for shows as <code>expression</code>, one that failed as a stderr span
        codes = set(page.locator(".myst code").all_inner_texts())
        raw = sorted(expressions & codes)
        assert not raw, f"{len(raw)} {{eval}} expressions show as code, e.g. {raw[:3]}"
        failed = page.locator('.myst [data-mime-type="application/vnd.jupyter.stderr"]')
        assert failed.count() == 0, f"an {{eval}} failed: {failed.first.inner_text()}"
        text = page.inner_text(".jp-Notebook")
        assert "{eval}" not in text and "{glue" not in text and "{cite}" not in text

        before = _explorer_state(page)
        handle = page.locator(f"{EXPLORER} .widget-slider .noUi-handle").first
        handle.scroll_into_view_if_needed()
        box = handle.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + 60, box["y"] + box["height"] / 2, steps=5)
        page.mouse.up()
        after_mouse = _wait_for_change(page, before, "a mouse drag")

        # The keyboard: type a value into the box beside a slider (both front ends), and in
        # JupyterLab also press arrow keys on a slider (Notebook 7 keeps them from the slider).
        slider = page.locator(f"{EXPLORER} .widget-slider").nth(1)
        handle = slider.locator(".noUi-handle")
        low, high = (float(handle.get_attribute(f"aria-value{e}")) for e in ("min", "max"))
        slider.locator(".widget-readout").click()
        page.keyboard.press("Control+A")
        page.keyboard.type(f"{(low + high) / 2:.2f}")     # the middle of the slider's range
        page.keyboard.press("Enter")
        after_typing = _wait_for_change(page, after_mouse, "typing a value")
        if frontend == "JupyterLab":
            handle.focus()
            for _ in range(3):
                page.keyboard.press("ArrowLeft")
            _wait_for_change(page, after_typing, "three arrow-key presses")
    finally:
        context.close()
