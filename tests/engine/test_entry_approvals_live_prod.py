"""ADR-009 on the production path itself: `precog run --live --venue kalshi --env prod --confirm-live` with the
default trading.manual_approval (`prod`) sends no entry until a person approves it; after `precog approvals
approve`, the next run sends it under the client_order_id stored with the approval (the decision layer's
planner path, the one production runs)."""

from __future__ import annotations

import json
from typing import Any

import pytest


@pytest.mark.timeout(300)
def test_a_live_production_run_sends_entries_only_after_approval(db_url: str, precog_cli: Any, tmp_path: Any) -> None:
    from trading.trading_dbkit import prod_stand_in

    stand_in = prod_stand_in(db_url, tmp_path / "keys")
    world, ex, server = stand_in.world, stand_in.exchange, stand_in.server
    server.start()
    env = stand_in.env

    def run() -> None:  # --env prod with the local exchange standing in for production's host
        r = precog_cli("run", "--venue", "kalshi", "--env", "prod", "--live", "--confirm-live", "--no-ingest",
                       "--no-notify", "--quiet", "--interval", "0.2", "--duration", "4", env=env, timeout=150)
        assert r.returncode == 0, r.stderr

    try:
        run()
        assert list(ex.account("us").orders.values()) == [], "an entry reached production without approval"
        pending = json.loads(precog_cli("approvals", "list", "--json").stdout)
        assert pending and all(p["status"] == "pending" and p["mode"] == "live" and p["environment"] == "prod"
                               for p in pending), pending
        assert len({(p["market_id"], p["side"], p["method_id"]) for p in pending}) == len(pending)  # once each
        alerts = world.conn.execute("SELECT count(*) FROM alerts WHERE alert_type = 'entry_approval_pending' "
                                    "AND severity = 'high'").fetchone()[0]
        assert alerts == len(pending)
        for p in pending:
            r = precog_cli("approvals", "approve", str(p["approval_id"]), "--by", "alice")
            assert r.returncode == 0, r.stderr
        run()
    finally:
        server.stop()
    sent = {o.client_order_id for o in ex.account("us").orders.values()}
    assert sent == {p["client_order_id"] for p in pending}, (sent, pending)
    rows = json.loads(precog_cli("approvals", "list", "--all", "--json").stdout)
    assert {r["status"] for r in rows} == {"submitted"} and len(rows) == len(pending)
    world.conn.close()
