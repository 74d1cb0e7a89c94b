"""The Dagster UI in a real browser: materialize from the UI, rebuild while a reader reads.

Chromium is Debian's (/usr/bin/chromium, installed by scripts/ensure-chromium.sh when
missing); Playwright comes from PyPI and never downloads a browser.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.dagster_ui import (
    ASSETS,
    DagsterUI,
    materialized_assets,
    run_materialized,
    runs,
    start_ui,
    wait_for_run,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LAUNCH = """
mutation Launch($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } }
  ... on PythonError { message } ... on RunConfigValidationInvalid { errors { message } } } }
"""


def ensure_chromium() -> Path:
    """Debian's Chromium, installed through apt when missing; skip only without apt."""
    if not CHROMIUM.exists():
        if shutil.which("apt-get") is None:
            pytest.skip("/usr/bin/chromium is missing and apt-get is not available to install it")
        subprocess.run(["bash", str(ROOT / "scripts" / "ensure-chromium.sh")], check=True)
    assert CHROMIUM.exists(), "scripts/ensure-chromium.sh did not install /usr/bin/chromium"
    return CHROMIUM


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterUI]:
    """`ledgerlake ui` on a freshly generated lake (hashing embedder); always stopped."""
    from eventlog.orders.generate import generate

    ensure_chromium()
    lake = tmp_path_factory.mktemp("ui") / "lake"
    generate(lake, orders=40, days=30, seed=5)
    ARTIFACTS.mkdir(exist_ok=True)
    server = start_ui(lake, ARTIFACTS / "dagster-ui.log", embedder="hashing")
    try:
        yield server
    finally:
        server.stop()
    assert server.process.poll() is not None


def browser_page(playwright: Any) -> Any:
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
    )
    return browser, browser.new_page(viewport={"width": 1400, "height": 900})


def dismiss_welcome(page: Any) -> None:
    """A fresh DAGSTER_HOME may greet with a modal: close it when it is there."""
    dialog = page.locator("[role=dialog]")
    if dialog.count() and dialog.first.is_visible():
        for name in ("Dismiss", "Skip", "Got it", "Close", "Done"):
            button = dialog.get_by_role("button", name=name)
            if button.count():
                button.first.click()
                return
        page.keyboard.press("Escape")


def ui_runs(ui: DagsterUI, job: str) -> list[dict[str, Any]]:
    """Runs of ``job`` that a person launched (not the log-head sensor)."""
    return [
        r
        for r in runs(ui)
        if r["jobName"] == job and not any(t["key"] == "dagster/sensor_name" for t in r["tags"])
    ]


def test_materialize_from_the_ui_and_screenshot_the_run(ui: DagsterUI) -> None:
    from playwright.sync_api import sync_playwright

    before = {r["runId"] for r in runs(ui)}
    with sync_playwright() as p:
        browser, page = browser_page(p)
        try:
            page.goto(f"{ui.url}/assets", wait_until="networkidle")
            dismiss_welcome(page)
            for name in ("orders", "order_states", "event_narratives", "training_set"):
                page.get_by_text(name, exact=True).first.wait_for(timeout=60_000)
            page.goto(f"{ui.url}/asset-groups", wait_until="networkidle")
            dismiss_welcome(page)
            button = page.get_by_role("button", name="Materialize all")
            button.first.wait_for(timeout=60_000)
            button.first.click()
            launched: list[dict[str, Any]] = []
            deadline = time.monotonic() + 60
            while not launched and time.monotonic() < deadline:
                launched = [r for r in runs(ui) if r["runId"] not in before]
                launched = [
                    r
                    for r in launched
                    if not any(t["key"] == "dagster/sensor_name" for t in r["tags"])
                ]
                time.sleep(0.5)
            assert launched, f"no run launched by the click:\n{ui.log_text()[-3000:]}"
            run_id = launched[0]["runId"]
            assert wait_for_run(ui, run_id) == "SUCCESS", ui.log_text()[-4000:]
            page.goto(f"{ui.url}/runs/{run_id}", wait_until="networkidle")
            dismiss_welcome(page)
            page.get_by_text("Success", exact=False).first.wait_for(timeout=60_000)
            shot = ARTIFACTS / f"dagster-run-{run_id[:8]}.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    # The click's own run built every asset (not a run the log-head sensor started).
    assert run_materialized(ui, run_id) == ASSETS
    tags = {t["key"]: t["value"] for t in launched[0]["tags"]}
    assert "dagster/sensor_name" not in tags
    materialized = materialized_assets(ui)
    assert {name for name, done in materialized.items() if done} == ASSETS


def read_counts(lake: Path, stop: threading.Event, seen: list[tuple[float, int, int]]) -> None:
    """A notebook-style reader: open read-only, count two tables, close; again and again."""
    from projections.warehouse import WarehouseBusyError, connect

    while not stop.is_set():
        try:
            con = connect(lake, read_only=True, timeout_s=0.2)
        except WarehouseBusyError:
            continue
        try:
            orders = con.execute("SELECT count(*) FROM analytics.orders").fetchone()[0]
            events = con.execute("SELECT count(*) FROM analytics.order_events").fetchone()[0]
        finally:
            con.close()
        seen.append((time.monotonic(), int(orders), int(events)))
        time.sleep(0.05)


def test_rebuild_all_never_shows_a_reader_an_empty_or_partial_table(ui: DagsterUI) -> None:
    from projections.warehouse import checkpoints, connect

    lake = ui.lake
    con = connect(lake, read_only=True, timeout_s=60)
    try:
        builds_before = {n: c.build for n, c in checkpoints(con).items()}
        full_orders = con.execute("SELECT count(*) FROM analytics.orders").fetchone()[0]
        full_events = con.execute("SELECT count(*) FROM analytics.order_events").fetchone()[0]
    finally:
        con.close()
    assert full_orders == 40 and full_events == 364  # 40 orders over 30 days, seed 5

    seen: list[tuple[float, int, int]] = []
    stop = threading.Event()
    reader = threading.Thread(target=read_counts, args=(lake, stop, seen), daemon=True)
    reader.start()
    try:
        started = time.monotonic()
        params = {
            "selector": {
                "repositoryLocationName": "pipelines.definitions",
                "repositoryName": "__repository__",
                "jobName": "rebuild_all",
            },
            "runConfigData": {},
        }
        launched = ui.graphql(LAUNCH, {"params": params})["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]
        assert wait_for_run(ui, run_id) == "SUCCESS", ui.log_text()[-4000:]
        finished = time.monotonic()
    finally:
        stop.set()
        reader.join(timeout=30)
    during = [s for s in seen if started <= s[0] <= finished]
    assert during, "the reader never got a turn while rebuild_all ran"
    assert all((o, e) == (full_orders, full_events) for _, o, e in seen), sorted(
        set((o, e) for _, o, e in seen)
    )
    con = connect(lake, read_only=True, timeout_s=60)
    try:
        builds_after = {n: c.build for n, c in checkpoints(con).items()}
    finally:
        con.close()
    assert all(builds_after[n] == builds_before[n] + 1 for n in builds_before), builds_after
