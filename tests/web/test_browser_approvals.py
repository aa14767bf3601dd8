"""The Approvals page in a real browser (Playwright on Debian's chromium): an entry a trading loop holds shows up
live, with the header count, and the trader approves one and rejects another from the page."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import expect

from web.dashkit import RunningDashboard, Seeded, seed_approval

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[2]
UI_WAIT_MS = 20_000  # a condition is met as soon as it holds; the margin is for a loaded CI machine

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]


@pytest.fixture
def page() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1360, "height": 860}, locale="en-US", timezone_id="UTC")
        pg: Any = context.new_page()  # carries the errors seen, for the test to assert
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        pg.errors = errors
        yield pg
        browser.close()


def _screenshot(page: Any, name: str) -> None:
    """To test-artifacts/dashboard/; with PRECOG_UPDATE_SCREENSHOTS=1 also docs/screenshots/ (as test_browser)."""
    png = page.screenshot(full_page=True)
    artifacts = ROOT / "test-artifacts" / "dashboard"
    artifacts.mkdir(parents=True, exist_ok=True)
    (artifacts / f"{name}.png").write_bytes(png)
    if os.environ.get("PRECOG_UPDATE_SCREENSHOTS") == "1":
        from PIL import Image

        img = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=96)
        img.save(ROOT / "docs" / "screenshots" / f"{name}.png", optimize=True)


def _row(conn: psycopg.Connection[Any], approval_id: int) -> tuple[Any, ...]:
    conn.rollback()
    row = conn.execute("SELECT status, decided_by, reason FROM entry_approvals WHERE approval_id = %s",
                       (approval_id,)).fetchone()
    assert row is not None
    return tuple(row)


def test_a_held_entry_appears_live_and_is_approved_or_rejected_from_the_page(
        dashboard: RunningDashboard, seeded: Seeded, page: Any, conn: psycopg.Connection[Any]) -> None:
    page.goto(f"{dashboard.url}/?token={dashboard.token}#approvals")
    page.wait_for_selector("#page-approvals[data-loaded='1']", timeout=UI_WAIT_MS)
    page.wait_for_selector("#live.on", timeout=UI_WAIT_MS)
    page.wait_for_selector("#auth-button.unlocked", timeout=UI_WAIT_MS)
    page.wait_for_selector("[data-testid=approvals-panel] >> text=no entry waits for approval")
    expect(page.locator("#approval-count")).to_have_text("")

    # a trading loop holds two entries: they appear without a reload, counted in the header
    first = seed_approval(conn, seeded, market=0, side="yes", count=10, limit="0.6300", edge="0.0612")
    second = seed_approval(conn, seeded, market=1, side="no", count=4, limit="0.3900", edge="0.0205")
    row = page.locator(f"[data-testid=approval-{first}]")
    expect(row).to_contain_text(seeded.market_ids[0], timeout=UI_WAIT_MS)
    for text in ("yes", "10", "0.63", "0.0612", "moderate_nfl v1.0"):
        expect(row).to_contain_text(text)
    expect(row).to_contain_text(" min ")  # expires in ~10 min, counting down
    expect(page.locator(f"[data-testid=approval-{second}]")).to_be_visible(timeout=UI_WAIT_MS)
    expect(page.locator("#approval-count")).to_have_text("2", timeout=UI_WAIT_MS)
    _screenshot(page, "approvals")

    # approving asks who you are (recorded) and confirms
    page.click(f"[data-testid=approve-{first}]")
    expect(page.locator("#confirm-dialog")).to_be_visible()
    expect(page.locator("#confirm-text")).to_contain_text(f"buy 10 yes on {seeded.market_ids[0]} at ≤ 0.63")
    page.click("#confirm-ok")
    page.wait_for_selector("#confirm-error >> text=Your name (recorded) is required")
    page.fill("#confirm-fields input[name=by]", "alice")
    page.click("#confirm-ok")
    expect(page.locator(f"[data-testid=approval-status-{first}]")).to_have_text("approved", timeout=UI_WAIT_MS)
    expect(page.locator(f"[data-testid=approve-{first}]")).to_have_count(0)
    assert _row(conn, first) == ("approved", "alice", None)
    expect(page.locator("#approval-count")).to_have_text("1", timeout=UI_WAIT_MS)

    # rejecting asks for a reason; the name is remembered for this tab
    page.click(f"[data-testid=reject-{second}]")
    expect(page.locator("#confirm-fields input[name=by]")).to_have_value("alice")
    page.fill("#confirm-fields input[name=reason]", "injury news")
    page.click("#confirm-ok")
    expect(page.locator(f"[data-testid=approval-{second}]")).to_have_count(0, timeout=UI_WAIT_MS)
    expect(page.locator("[data-testid=approvals-history]")).to_contain_text("injury news")
    assert _row(conn, second) == ("rejected", "alice", "injury news")
    expect(page.locator("#approval-count")).to_have_text("", timeout=UI_WAIT_MS)
    assert page.errors == []
