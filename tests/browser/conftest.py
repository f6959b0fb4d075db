"""Headless Chromium from Debian's packages (`chromium`, `chromium-driver`), driven with Selenium.

Nothing here downloads a browser or a driver: both must be on the machine (`.ci/run` installs
them). Without them the browser tests are skipped, and say why.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
HAVE_BROWSER = Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()
SCREENSHOTS = ROOT / "docs" / "screenshots"

# The flags the project's machines need: root (no sandbox), no GPU, and no network of the browser's own.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not HAVE_BROWSER:
        pytest.skip("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="referrals-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser: Any, local_api: Any) -> Iterator[Any]:
    """The browser at a standard size with nothing kept from an earlier test, and no script errors left unseen."""
    browser.set_window_size(1280, 900)
    browser.get(local_api.base + "/_local/health")  # any page of the origin, to reach its storage
    browser.execute_script("sessionStorage.clear(); localStorage.clear()")
    browser.get_log("browser")  # start from an empty log
    yield browser
    # An HTTP error answer is the page's to show (and the tests read what it shows); anything else
    # severe (a script error, a blocked resource, a content-security refusal) fails the test.
    logged = browser.get_log("browser")
    severe = [
        e["message"]
        for e in logged
        if e["level"] == "SEVERE" and "Failed to load resource: the server" not in e["message"]
    ]
    assert not severe, f"the page logged errors: {severe}"


@pytest.fixture
def screenshot(browser: Any, tmp_path: Path) -> Callable[[str], Path]:
    """Save a full-page picture; into docs/screenshots/ when REFERRALS_SCREENSHOTS is set (`make screenshots`)."""

    def take(name: str) -> Path:
        folder = SCREENSHOTS if os.environ.get("REFERRALS_SCREENSHOTS") else tmp_path
        folder.mkdir(parents=True, exist_ok=True)
        # The window is made as tall as the page for the picture: a full-page capture beyond the
        # viewport leaves sandboxed (out-of-process) frames blank, and the mail frames matter here.
        size = browser.get_window_size()
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(size["width"], height + (size["height"] - browser.execute_script("return innerHeight")))
        try:
            picture = browser.get_screenshot_as_png()
        finally:
            browser.set_window_size(size["width"], size["height"])
        path = folder / f"{name}.png"
        path.write_bytes(picture)
        assert path.stat().st_size > 10_000, "the screenshot is blank"
        return path

    return take
