"""After `precog demo` the overview's balance card has the demo account's balance (platform `local`, mode
`paper`), equal to the exchange ledger's cash, instead of "no balance recorded"."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest

from web.dashkit import running_dashboard


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_balance_card_shows_the_demo_accounts_balance(db_url: str, precog_cli: Any) -> None:
    r = precog_cli("demo", "--games", "1", "--speed", "0", "--seed", "3", "--transport", "inprocess", "--json",
                   timeout=280)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().rsplit("\n", 1)[0])  # the JSON, then the demo's last line
    venue_cash = Decimal(out["ledger"]["venue_cash"])
    assert out["ledger_match"] and venue_cash == Decimal("10000") + Decimal(out["pnl"])
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT platform_id, mode, balance, portfolio_value FROM current_balances").fetchall()
        versions = conn.execute("SELECT count(*) FROM account_balance").fetchone()
    # every position settled: nothing left to value
    assert rows == [("local", "paper", venue_cash, Decimal(0))]
    assert versions is not None and versions[0] >= 2  # the start and at least the end of the run
    with running_dashboard(db_url, mode="paper") as dash:
        overview = httpx.get(dash.url + "/api/overview").json()
        curve = httpx.get(dash.url + "/api/pnl").json()["equity_curve"]
    assert [(b["platform_id"], b["mode"], Decimal(b["balance"])) for b in overview["balances"]] == [
        ("local", "paper", venue_cash)]
    assert curve and Decimal(curve[0]["equity"]) == Decimal("10000") and Decimal(curve[-1]["equity"]) == venue_cash
