"""The search page in a real browser: type a query, open an order, move the time slider.

Chromium is Debian's (/usr/bin/chromium, installed by scripts/ensure-chromium.sh when
missing); Playwright comes from PyPI and never downloads a browser.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pipelines.test_ui_browser import CHROMIUM_ARGS, ensure_chromium
from tests.support.served import RunningServer, build_served_lake

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    ensure_chromium()
    lake = build_served_lake(tmp_path_factory.mktemp("page") / "lake")
    ARTIFACTS.mkdir(exist_ok=True)
    running = RunningServer(lake, ARTIFACTS / "serve-page.log")
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


def test_type_a_query_open_an_order_and_move_the_slider(server: RunningServer) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(ensure_chromium()), args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = browser.new_page()
            page.goto(server.url + "/")
            page.locator("#q").press_sequentially("parcel arrived damaged", delay=20)
            first = page.locator("#results .order a").first
            expect(first).to_be_visible(timeout=10_000)  # results came as one typed
            assert "q=parcel+arrived+damaged" in page.url
            order_id = first.inner_text()
            first.click()
            expect(page.locator("h1")).to_have_text(f"Order {order_id}")
            state = page.locator("#state table")
            expect(state).to_contain_text("status", timeout=10_000)
            rows = page.locator("#timeline tr[data-occurred]")
            assert rows.count() >= 2
            expect(page.locator("#timeline tr.later")).to_have_count(0)
            now_text = state.inner_text()
            slider = page.locator("#as-of")
            slider.focus()
            slider.press("Home")  # the first moment: only the first event(s) had happened
            expect(page.locator("#timeline tr.later")).not_to_have_count(0)
            expect(page.locator("#state")).not_to_have_text(now_text)
            expect(state).to_contain_text("OrderCreated")
            page.locator("#use-known").check()
            page.locator("#known-at").focus()
            page.locator("#known-at").press("Home")
            # nothing was recorded yet at the first moment: not known to exist then
            expect(page.locator("#state")).to_contain_text("did not exist")
            expect(page.locator("#timeline tr.later")).to_have_count(rows.count())
            page.screenshot(path=str(ARTIFACTS / "serve-page.png"))
        finally:
            browser.close()
