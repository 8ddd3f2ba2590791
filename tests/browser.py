"""Headless Chromium for the tests that read a report as a browser shows it."""
import contextlib
import shutil

import pytest

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         # Without the background-networking flags Chromium's own connections fail on a closed network.
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage")


def chromium():
    """A headless Chromium driven through Debian's chromedriver, or a skip saying why."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed "
                                    "(pip install '.[test]')")
    from selenium.webdriver.chrome.service import Service

    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not browser or not driver:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium "
                    "chromium-driver; .ci/run installs them)")
    return webdriver, Service, browser, driver


@contextlib.contextmanager
def chromium_page(profile, width: int = 1280, height: int = 900):
    """A browser window of a laptop's size (skips without Chromium), closed on exit."""
    webdriver, Service, binary, driver = chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(driver), options=options)
    browser.set_window_size(width, height)
    try:
        yield browser
    finally:
        browser.quit()
