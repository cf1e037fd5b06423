"""A real browser for page tests: the distribution's headless Chromium, driven by Selenium.

Selenium's own driver download cannot reach the network here (nor on many CI
machines), so the system ``chromium`` and ``chromedriver`` are used by path and
Selenium Manager is never asked. Without them the page tests skip with the
reason, except under ``CI=true``, where a missing browser is a failure (the
Makefile's ``browser`` target installs it with apt-get when run as root).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from selenium.webdriver import Chrome

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome")
DRIVER_NAMES = ("chromedriver",)
WINDOW = (1280, 900)


def find_browser() -> tuple[Path, Path] | str:
    """(browser, driver) paths, or why none is usable (a sentence for a skip reason)."""
    browser = next((shutil.which(name) for name in BROWSER_NAMES if shutil.which(name)), None)
    driver = next((shutil.which(name) for name in DRIVER_NAMES if shutil.which(name)), None)
    if browser is None or driver is None:
        missing = " and ".join(
            name for name, path in (("chromium", browser), ("chromedriver", driver)) if not path
        )
        return (
            f"{missing} not found on PATH: page tests need a system browser "
            "(Debian: apt-get install chromium chromium-driver; `make test` does it as root)."
        )
    return Path(browser), Path(driver)


def start_browser(browser: Path, driver: Path) -> Chrome:
    """A headless Chromium of ``WINDOW`` size; the caller quits it.

    Raises selenium's WebDriverException when the driver cannot start the browser.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(browser)
    for flag in ("--headless=new", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--window-size={WINDOW[0]},{WINDOW[1]}", "--no-first-run",
                 "--disable-extensions", "--disable-background-networking"):  # fmt: skip
        options.add_argument(flag)
    if os.geteuid() == 0:  # Chromium's sandbox refuses to run as root (CI containers)
        options.add_argument("--no-sandbox")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver_log = (
        Path(os.environ.get("LAKEHOUSE_TEST_ARTIFACTS", "test-artifacts")) / "chromedriver.log"
    )
    driver_log.parent.mkdir(parents=True, exist_ok=True)
    return webdriver.Chrome(
        options=options, service=Service(executable_path=str(driver), log_output=str(driver_log))
    )


def artifacts_dir() -> Path:
    """Where screenshots go: ``LAKEHOUSE_TEST_ARTIFACTS`` or ``test-artifacts/`` (git-ignored)."""
    root = Path(os.environ.get("LAKEHOUSE_TEST_ARTIFACTS", "test-artifacts"))
    path = root / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def screenshot(driver: Chrome, name: str) -> Path:
    """Save the current page as ``<artifacts>/screenshots/<name>.png``; returns the path."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "page"
    path = artifacts_dir() / f"{safe}.png"
    driver.save_screenshot(str(path))
    return path


def console_errors(driver: Chrome) -> list[str]:
    """Severe messages the page's JavaScript logged since the last call (errors only)."""
    return [
        str(entry.get("message", ""))
        for entry in driver.get_log("browser")
        if entry.get("level") == "SEVERE"
    ]
