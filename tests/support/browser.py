"""Real headless Chromium for the HTML tests, driven by Playwright's Python package.

The browser is Debian's `chromium` (apt), not a Playwright download: `playwright install`
fetches from a CDN this project's CI cannot reach. Under `CI=true` a missing browser or
missing `playwright` package fails the test instead of skipping it.

    def test_report(browser):
        page = browser.open(html_path)
        assert page.count("div.plotly-graph-div") == 1
        assert page.errors == []
        page.screenshot(tmp_path / "report.png")
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .ci import missing_dependency

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def find_chromium() -> str | None:
    explicit = os.environ.get("DNNPROF_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class RenderedPage:
    """One loaded page, with every console error and uncaught page error seen so far."""

    page: Any  # playwright.sync_api.Page
    url: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        return [f"console: {m}" for m in self.console_errors] + [
            f"page: {m}" for m in self.page_errors
        ]

    def count(self, selector: str) -> int:
        return self.page.locator(selector).count()

    def text(self, selector: str) -> str:
        return self.page.locator(selector).first.inner_text()

    def texts(self, selector: str) -> list[str]:
        return self.page.locator(selector).all_inner_texts()

    def attribute(self, selector: str, name: str) -> str | None:
        return self.page.locator(selector).first.get_attribute(name)

    def evaluate(self, expression: str, arg: Any = None) -> Any:
        return self.page.evaluate(expression, arg)

    def wait_for(self, selector: str, timeout_s: float = 30.0) -> None:
        self.page.wait_for_selector(selector, timeout=timeout_s * 1000)

    def screenshot(self, path: str | Path, full_page: bool = True) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def close(self) -> None:
        self.page.close()


class BrowserSession:
    """Opens local files (or file:// URLs) in the shared headless browser."""

    def __init__(self, context: Any) -> None:
        self.context = context
        self.pages: list[RenderedPage] = []

    def open(
        self, target: str | Path, wait_until: str = "load", timeout_s: float = 60.0
    ) -> RenderedPage:
        url = (
            target
            if isinstance(target, str) and "://" in target
            else Path(target).resolve().as_uri()
        )
        page = self.context.new_page()
        rendered = RenderedPage(page=page, url=url)
        # Handlers go on before navigation so errors thrown while the page loads are kept.
        page.on(
            "console",
            lambda message: (
                rendered.console_errors.append(message.text) if message.type == "error" else None
            ),
        )
        page.on("pageerror", lambda error: rendered.page_errors.append(str(error)))
        page.goto(url, wait_until=wait_until, timeout=timeout_s * 1000)
        self.pages.append(rendered)
        return rendered

    def close_pages(self) -> None:
        for rendered in self.pages:
            if not rendered.page.is_closed():
                rendered.close()
        self.pages.clear()


@pytest.fixture(scope="session")
def chromium_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    executable = find_chromium()
    if executable is None:
        missing_dependency(
            "Chromium not found (apt-get install chromium, or point DNNPROF_CHROMIUM at one)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing_dependency(
            "the playwright Python package is not installed (pip install playwright)"
        )
    profile = tmp_path_factory.mktemp("chromium-profile")
    playwright = sync_playwright().start()
    try:
        # A persistent context is Playwright's way to pass --user-data-dir; it refuses the flag in args.
        context = playwright.chromium.launch_persistent_context(
            user_data_dir=str(profile),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
    except Exception as error:
        playwright.stop()
        raise RuntimeError(f"could not launch {executable} through Playwright: {error}") from error
    try:
        yield context
    finally:
        context.close()
        playwright.stop()


@pytest.fixture
def browser(chromium_context: Any) -> Iterator[BrowserSession]:
    session = BrowserSession(chromium_context)
    try:
        yield session
    finally:
        session.close_pages()
