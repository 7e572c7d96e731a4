"""Fixtures shared by the test modules: the one book build, and the one Chromium (Playwright's
sync API runs one event loop per process, so both browser tests share this browser)."""
import os
from pathlib import Path

import pytest

from book_build import HTML, ensure_built

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def book_html() -> Path:
    """The built HTML book (built once per session, executing every chapter)."""
    failure = ensure_built()
    if failure:
        pytest.fail(failure, pytrace=False)
    return HTML


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright; skips without it, except under CI (``CI`` set)."""
    def unavailable(reason):
        if IN_CI:
            pytest.fail(f"{reason} (CI is set: the browser tests must run; `make browser-deps`)")
        pytest.skip(reason)

    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} not found (install it with `make browser-deps`)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - playwright is pinned in requirements.txt
        unavailable(f"playwright is not importable: {exc}")
    with sync_playwright() as pw:
        # Playwright gives every launch a fresh temporary user-data dir (removed on close).
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()
