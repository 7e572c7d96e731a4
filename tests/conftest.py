"""Fixtures shared by the test modules."""
from pathlib import Path

import pytest

from book_build import HTML, ensure_built


@pytest.fixture(scope="session")
def book_html() -> Path:
    """The built HTML book (built once per session, executing every chapter)."""
    failure = ensure_built()
    if failure:
        pytest.fail(failure, pytrace=False)
    return HTML
