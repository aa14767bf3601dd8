"""The dashboard in a real browser (Playwright driving Debian's chromium) against the real server and database.

Screenshots of every page go to test-artifacts/dashboard/; with PRECOG_UPDATE_SCREENSHOTS=1 they also replace
the committed ones in docs/screenshots/ (palette-reduced PNGs, to keep the repository small).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from playwright.sync_api import expect

from web.dashkit import RunningDashboard, Seeded, running_dashboard

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
DOCS_SHOTS = ROOT / "docs" / "screenshots"
TABS = ("overview", "positions", "edges", "pnl", "methods", "alerts", "controls")
UI_WAIT_MS = 20_000  # a condition is met as soon as it holds; the margin is for a loaded CI machine

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # launch() gives every browser a fresh temporary profile (user data dir)
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1360, "height": 860}, locale="en-US", timezone_id="UTC")
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    # a refused request (4xx) is logged by the browser as a failed resource: expected, not a page error
    pg.on("console", lambda msg: errors.append(msg.text)
          if msg.type == "error" and "status of 4" not in msg.text else None)
    pg.errors = errors
    yield pg
    context.close()


def _open(page: Any, dash: RunningDashboard, tab: str, *, token: str | None = None) -> None:
    query = f"?token={token}" if token else ""
    page.goto(f"{dash.url}/{query}#{tab}")
    page.wait_for_selector(f"#page-{tab}[data-loaded='1']", timeout=UI_WAIT_MS)
    page.wait_for_selector("#live.on", timeout=UI_WAIT_MS)


def _save_screenshot(page: Any, name: str, *, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    png = page.screenshot(full_page=full_page)
    (ARTIFACTS / f"{name}.png").write_bytes(png)
    if os.environ.get("PRECOG_UPDATE_SCREENSHOTS") == "1":
        from PIL import Image

        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        img = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=96)
        img.save(DOCS_SHOTS / f"{name}.png", optimize=True)


def _alert_state(conn: psycopg.Connection[Any], alert_id: int) -> tuple[Any, ...]:
    conn.rollback()
    row = conn.execute("SELECT acknowledged_at IS NOT NULL, acknowledged_by, resolved_at IS NOT NULL FROM alerts"
                       " WHERE alert_id = %s", (alert_id,)).fetchone()
    assert row is not None
    return tuple(row)


# ---------------------------------------------------------------- every page, with data

def test_every_page_loads_with_data(shared_dashboard: RunningDashboard, shared_seeded: Seeded, page: Any) -> None:
    expect: dict[str, list[str]] = {
        "overview": ["[data-testid=card-risk] >> text=$79.00",
                     "[data-testid=card-risk] >> text=95% VaR of 2 open position(s) to settlement, 7.8% of equity",
                     "[data-testid=card-balance] >> text=$963.25",
                     "[data-testid=card-balance] >> text=local paper: cash $963.25, positions $48.50", "[data-testid=card-today] >> text=+$9.50",
                     "[data-testid=card-total] >> text=-$3.75", "[data-testid=overview-state] >> text=REDUCING",
                     "[data-testid=breakers-table] >> text=data_stale", "[data-testid=feeds-table] >> text=espn:nfl",
                     "[data-testid=health-table] >> text=degraded"],
        "positions": [f"[data-testid=position-{shared_seeded.near_position_id}].near",
                      "[data-testid=open-positions] >> text=stop 0.60",
                      "[data-testid=closed-positions] >> text=trailing_stop",
                      "[data-testid=closed-positions] >> text=-$12.25"],
        "edges": ["[data-testid=edges-table] >> text=0.0612", "[data-testid=edges-table] >> text=auto_execute"],
        "pnl": ["[data-testid=equity-chart] canvas", "[data-testid=pnl-by-method] >> text=moderate_nfl v1.0 (4)",
                "[data-testid=pnl-by-sport] rect", "[data-testid=trades-table] >> text=trailing_stop"],
        "methods": ["[data-testid=methods-table] >> text=moderate_nfl v1.0", "[data-testid=models-table] >> text=v1.1",
                    f"[data-testid=model-{shared_seeded.testing_model_id}-active]"],
        "alerts": [f"[data-testid=alert-{i}]" for i in shared_seeded.alert_ids.values()],
        "controls": ["[data-testid=controls-state] >> text=REDUCING", "[data-testid=reset-data_stale]",
                     "[data-testid=halt-button]"],
    }
    for tab in TABS:
        _open(page, shared_dashboard, tab)
        for selector in expect[tab]:
            page.wait_for_selector(selector, timeout=UI_WAIT_MS)
        page.wait_for_timeout(150)
        _save_screenshot(page, tab)
    assert page.locator("#state-badge").inner_text() == "REDUCING"
    assert page.errors == []


def test_edge_filters_in_the_page(shared_dashboard: RunningDashboard, page: Any) -> None:
    _open(page, shared_dashboard, "edges")
    assert page.locator("[data-testid=edges-table] tbody tr").count() == 3
    page.fill("#edge-filters input[name=min_ev]", "0.05")
    page.click("#edge-filters button[type=submit]")
    expect(page.locator("[data-testid=edges-table] tbody tr")).to_have_count(1)
    page.fill("#edge-filters input[name=min_ev]", "1 OR 1=1")
    page.click("#edge-filters button[type=submit]")
    page.wait_for_selector("[data-testid=edges-error] >> text=min_ev must be a number")


# ---------------------------------------------------------------- live updates

def _open_alert(conn: psycopg.Connection[Any]) -> int:
    """A new open critical alert, committed; its id."""
    row = conn.execute("INSERT INTO alerts (alert_type, severity, component, message) VALUES"
                       " ('venue_down', 'critical', 'kalshi_api', 'exchange not answering') RETURNING alert_id"
                       ).fetchone()
    conn.commit()
    assert row is not None
    return int(row[0])


def test_a_new_alert_appears_without_reloading(dashboard: RunningDashboard, page: Any,
                                               conn: psycopg.Connection[Any]) -> None:
    _open(page, dashboard, "alerts")
    page.evaluate("window.__notReloaded = true")
    alert_id = _open_alert(conn)
    page.wait_for_selector(f"[data-testid=alert-{alert_id}] >> text=exchange not answering", timeout=UI_WAIT_MS)
    assert page.evaluate("window.__notReloaded") is True
    # the header's unacknowledged count followed too (3 seeded + 1)
    expect(page.locator("#alert-count")).to_have_text("4", timeout=UI_WAIT_MS)


def test_a_live_change_that_leaves_a_page_alone_keeps_its_elements(dashboard: RunningDashboard, page: Any,
                                                                   conn: psycopg.Connection[Any]) -> None:
    # Rebuilding a page whose data did not change would drop a click in flight (mousedown on the old button,
    # mouseup on its replacement): that is how a click on "Halt trading" was once lost.
    _open(page, dashboard, "alerts")
    page.evaluate("window.__table = document.querySelector('[data-testid=alerts-table]')")
    with page.expect_response(lambda r: "/api/alerts?" in r.url, timeout=UI_WAIT_MS):
        conn.execute("INSERT INTO alerts (alert_type, severity, component, message, resolved_at) VALUES"
                     " ('venue_down', 'high', 'kalshi_api', 'already over', now())")  # not in the open view
        conn.commit()
    page.wait_for_function("() => !state.loading.alerts && !state.pending.alerts")
    assert page.evaluate("window.__table.isConnected") is True
    # a change the page shows does rebuild it
    page.wait_for_selector(f"[data-testid=alert-{_open_alert(conn)}]", timeout=UI_WAIT_MS)
    assert page.evaluate("window.__table.isConnected") is False
    assert page.errors == []


# ---------------------------------------------------------------- actions

def test_acknowledge_button_changes_the_alert_in_the_database(dashboard: RunningDashboard, seeded: Seeded,
                                                              page: Any, conn: psycopg.Connection[Any]) -> None:
    alert_id = seeded.alert_ids["api"]
    _open(page, dashboard, "alerts", token=dashboard.token)
    assert dashboard.token not in page.url  # taken from the address bar into this tab's session storage
    page.wait_for_selector("#auth-button.unlocked")
    assert _alert_state(conn, alert_id) == (False, None, False)
    page.click(f"[data-testid=ack-{alert_id}]")
    page.wait_for_selector(f"[data-testid=state-{alert_id}] >> text=acknowledged", timeout=UI_WAIT_MS)
    assert _alert_state(conn, alert_id) == (True, "dashboard", False)
    # resolve it too, through the confirmation dialog
    page.click(f"[data-testid=resolve-{alert_id}]")
    page.select_option("#confirm-fields select[name=action]", "false_positive")
    page.fill("#confirm-fields input[name=notes]", "provider blip")
    page.click("#confirm-ok")
    page.wait_for_selector(f"[data-testid=alert-{alert_id}]", state="detached", timeout=UI_WAIT_MS)  # left the open view
    conn.rollback()
    assert conn.execute("SELECT resolution_action, resolved_notes FROM alerts WHERE alert_id = %s",
                        (alert_id,)).fetchone() == ("false_positive", "provider blip")
    assert page.errors == []


def test_a_write_without_the_token_is_refused_and_changes_nothing(dashboard: RunningDashboard, seeded: Seeded,
                                                                  page: Any, conn: psycopg.Connection[Any]) -> None:
    alert_id = seeded.alert_ids["api"]
    _open(page, dashboard, "alerts")
    page.click(f"[data-testid=ack-{alert_id}]")
    page.wait_for_selector("#token-dialog[open]")
    page.fill("#token-input", "not-the-token-at-all-0000")
    page.click("#token-save")
    page.wait_for_selector("#token-error >> text=not accepted")
    page.click("#token-cancel")
    assert _alert_state(conn, alert_id) == (False, None, False)
    # the page's own request without a token, as any script could send it: 401, nothing changes
    status = page.evaluate("""async (id) => (await fetch('/api/alerts/' + id + '/acknowledge', {method: 'POST',
        headers: {'Content-Type': 'application/json'}, body: JSON.stringify({by: 'mallory'})})).status""", alert_id)
    assert status == 401
    # a stale/wrong token kept in the tab is refused with 403 and the user is told
    page.evaluate("sessionStorage.setItem('precog.dashboard.token', 'wrong-token-wrong-token')")
    page.click(f"[data-testid=ack-{alert_id}]")
    page.wait_for_selector(".toast.error >> text=token is wrong", timeout=UI_WAIT_MS)
    assert _alert_state(conn, alert_id) == (False, None, False)


def test_halt_and_resume_from_the_controls_page(dashboard: RunningDashboard, page: Any,
                                                conn: psycopg.Connection[Any]) -> None:
    def latest_state() -> tuple[Any, ...] | None:
        conn.rollback()
        row = conn.execute("SELECT mode, reason FROM trading_state_history ORDER BY id DESC LIMIT 1").fetchone()
        return tuple(row) if row else None

    page.goto(f"{dashboard.url}/?token={dashboard.token}#controls")
    page.wait_for_selector("#auth-button.unlocked")
    page.wait_for_selector("[data-testid=controls-state] >> text=REDUCING")
    page.wait_for_selector("#live.on")
    dialog = page.locator("#confirm-dialog")
    # cancelling the confirmation changes nothing
    page.click("[data-testid=halt-button]")
    expect(dialog).to_be_visible()
    page.click("#confirm-cancel")
    expect(dialog).to_be_hidden()
    assert latest_state() is None
    # a halt needs a reason
    page.click("[data-testid=halt-button]")
    expect(dialog).to_be_visible()
    page.click("#confirm-ok")
    page.wait_for_selector("#confirm-error >> text=Reason is required")
    page.fill("#confirm-fields input[name=reason]", "exchange maintenance window")
    page.click("#confirm-ok")
    page.wait_for_selector("[data-testid=controls-state] >> text=HALTED", timeout=UI_WAIT_MS)
    page.wait_for_selector("#state-badge >> text=HALTED", timeout=UI_WAIT_MS)
    assert latest_state() == ("HALTED", "manual tripped: exchange maintenance window")
    _save_screenshot(page, "controls-halted")
    # resuming while data_stale still blocks is refused, and says why
    page.click("[data-testid=resume-button]")
    page.click("#confirm-ok")
    page.wait_for_selector(".toast.error >> text=open breakers data_stale", timeout=UI_WAIT_MS)
    assert (latest_state() or ("?",))[0] == "HALTED"
    # ... unless the other breakers are reset too
    page.click("[data-testid=resume-button]")
    page.select_option("#confirm-fields select[name=reset_all]", "yes")
    page.click("#confirm-ok")
    page.wait_for_selector("[data-testid=controls-state] >> text=ACTIVE", timeout=UI_WAIT_MS)
    assert (latest_state() or ("?",))[0] == "ACTIVE"
    conn.rollback()
    assert conn.execute("SELECT count(*) FROM circuit_breaker_events WHERE resolved_at IS NULL").fetchone() == (0,)
    assert page.errors == []


# ---------------------------------------------------------------- with data from a real demo run

@pytest.mark.slow
def test_pages_show_a_short_demo_run(db_url: str, precog_cli: Any, page: Any) -> None:
    import importlib.util

    if importlib.util.find_spec("precog.cli.demo") is None:
        pytest.skip("`precog demo` is not available yet")
    result = precog_cli("demo", "--games", "1", "--speed", "0", "--seed", "3", "--transport", "inprocess",
                        timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    with psycopg.connect(db_url) as conn:
        trades = conn.execute("SELECT count(*) FROM trades").fetchone()
        methods = [r[0] for r in conn.execute("SELECT DISTINCT me.method_name FROM positions p JOIN methods me"
                                              " ON me.method_id = p.method_id").fetchall()]
    assert trades is not None and trades[0] > 0
    with running_dashboard(db_url) as dash:
        pnl = httpx.get(dash.url + "/api/pnl").json()
        curve = pnl["realized_curve"]
        assert Decimal(curve[-1]["cumulative"]) == Decimal(pnl["summary"]["realized"]) != 0
        instants = [point["at"] for point in curve]
        assert instants == sorted(set(instants))  # one point per instant, in time order (what the chart needs)
        _open(page, dash, "pnl")
        page.wait_for_selector("[data-testid=equity-chart] canvas")
        for name in methods:
            page.wait_for_selector(f"[data-testid=pnl-by-method] >> text={name}")
        assert page.locator("[data-testid=trades-table] tbody tr").count() == min(trades[0], 200)
        _save_screenshot(page, "demo-pnl", full_page=False)
        _open(page, dash, "positions")
        page.wait_for_selector("[data-testid=closed-positions] tbody tr")
        _open(page, dash, "overview")
        page.wait_for_selector("[data-testid=engine-run] >> text=demo")
        # the demo's paper account, labelled with its platform and mode
        expect(page.locator("[data-testid=card-balance]")).to_contain_text("local paper: cash $")
    assert page.errors == []
