"""Shared test set-up: offline, quick, and a private cache so tests never touch a user's; and the
headless Chromium page of the real-browser tests (tests/test_browser.py, tests/test_book.py)."""
import os
import shutil

import pytest

from course_utils.settings import env_flag

CHROMIUM = os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--disable-extensions"]


def need(what: str):
    """Skip for want of ``what``, or fail under ``COURSE_REQUIRE_BROWSER=1`` (CI), saying what to install."""
    if env_flag("COURSE_REQUIRE_BROWSER"):
        pytest.fail(f"COURSE_REQUIRE_BROWSER=1 but {what}: `pip install -e '.[dev,book]'` (make test does) and "
                    "Debian's chromium (apt-get install chromium; never `playwright install`).")
    pytest.skip(what)


@pytest.fixture(autouse=True)
def _offline_private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("COURSE_CACHE", os.environ.get("COURSE_TEST_CACHE") or str(tmp_path_factory.getbasetemp() / "course-cache"))


@pytest.fixture(scope="module")
def one_thread():
    """torch on one thread for a module of tiny models: as fast, and many times faster on a shared, busy machine.
    Use it with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def page():
    """A headless Chromium page (Debian's chromium driven by Playwright), always closed."""
    if not (shutil.which(CHROMIUM) or os.path.exists(CHROMIUM)):
        need(f"no Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need("the playwright package is not installed")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 900})
        finally:
            browser.close()
