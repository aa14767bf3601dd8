"""SIGKILL the trading process at random points, restart it, repeat (>= 20 trials): no order is sent twice,
no fill is lost, and our positions equal the exchange's."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives import serialization

from precog.venues.exchange.auth import generate_key_pair
from precog.venues.exchange.engine import Exchange
from precog.venues.exchange.runner import ExchangeServer

CHILD = Path(__file__).with_name("engine_child.py")
TICKER = "KXNFLGAME-KILL-NEBUF-BUF"
TRIALS = 20
MAX_TRIALS = 3 * TRIALS  # a loaded machine may start some children too slowly to trade before the kill


class MovingMarketMaker(threading.Thread):
    """Quotes a two-sided book whose mid wanders, so the engine's positions hit stops and targets."""

    def __init__(self, ex: Exchange) -> None:
        super().__init__(daemon=True)
        self.ex = ex
        self.stop_flag = threading.Event()
        self.rng = random.Random(11)

    def run(self) -> None:
        mid, orders = 50, []
        while not self.stop_flag.is_set():
            for oid in orders:
                try:
                    self.ex.cancel_order("mm", oid)
                except Exception:  # noqa: BLE001 - filled meanwhile
                    pass
            mid = min(max(mid + self.rng.choice((-4, -2, 0, 2, 4)), 30), 70)
            orders = [self.ex.place_order("mm", TICKER, "yes", "buy", 300, Decimal(mid - 1) / 100).order_id,
                      self.ex.place_order("mm", TICKER, "no", "buy", 300, Decimal(100 - mid - 1) / 100).order_id]
            time.sleep(0.15)


def _spawn(db_url: str, base_url: str, key_id: str, key_path: Path, steps: int | None = None) -> subprocess.Popen[str]:
    env = dict(os.environ, PRECOG_DATABASE_URL=db_url, PYTHONPATH=str(Path(__file__).parents[2] / "src"))
    args = [sys.executable, str(CHILD), base_url, key_id, str(key_path), TICKER]
    if steps is not None:
        args.append(str(steps))
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.timeout(480)
def test_sigkill_at_random_points_loses_nothing_and_duplicates_nothing(db_url: str, tmp_path: Path) -> None:
    key_id, key_path, public_pem = generate_key_pair(tmp_path / "keys")
    ex = Exchange()
    ex.create_series("KXNFLGAME", "Pro Football Game")
    ex.create_event("KXNFLGAME-KILL-NEBUF", "KXNFLGAME", "New England at Buffalo")
    ex.create_market(TICKER, "KXNFLGAME-KILL-NEBUF", title="Will Buffalo win?")
    ex.create_account("us", Decimal("10000"))
    ex.create_account("mm", Decimal("10000000"))
    server = ExchangeServer(ex, tick_interval=0.05)
    server.keys.register("us", serialization.load_pem_public_key(public_pem), key_id)  # type: ignore[arg-type]
    server.start()
    mm = MovingMarketMaker(ex)
    mm.start()
    rng = random.Random(5)
    killed_with_activity = trials = 0
    try:
        # at least TRIALS kills at random points, and more (up to MAX_TRIALS) until half of TRIALS landed while
        # orders were flowing: whether a child trades within 0.05-1.5 s depends on the machine's load
        while trials < TRIALS or (killed_with_activity < TRIALS // 2 and trials < MAX_TRIALS):
            trials += 1
            before = len(ex.account("us").orders)
            child = _spawn(db_url, server.base_url, key_id, key_path)
            assert child.stdout is not None
            line = child.stdout.readline()  # "started": reconciliation done, trading begins
            assert line.strip() == "started", child.stderr.read() if child.stderr else line
            time.sleep(rng.uniform(0.05, 1.5))  # a random point in the trading loop
            child.send_signal(signal.SIGKILL)
            child.wait(10)
            if len(ex.account("us").orders) > before:
                killed_with_activity += 1
        # a last clean run reconciles what the killed processes left behind, then stops
        mm.stop_flag.set()
        mm.join(5)
        final = _spawn(db_url, server.base_url, key_id, key_path, steps=5)
        out, err = final.communicate(timeout=60)
        assert final.returncode == 0, err
    finally:
        mm.stop_flag.set()
        server.stop()

    acct = ex.account("us")
    # the kills really landed while orders were flowing
    assert killed_with_activity >= TRIALS // 2, f"{killed_with_activity} of {trials} trials saw new orders"
    with psycopg.connect(db_url) as conn:
        # no duplicate order: each venue order is one of our rows, each decision one venue order
        venue_orders = {o.order_id: o.client_order_id for o in acct.orders.values()}
        rows = conn.execute("SELECT client_order_id, venue_order_id, decision_key FROM orders").fetchall()
        by_cid = {r[0]: r for r in rows}
        assert len(venue_orders) == len(set(venue_orders.values()))
        for oid, cid in venue_orders.items():
            assert cid in by_cid, f"venue order {oid} ({cid}) has no row"
            assert by_cid[cid][1] in (None, oid)
        assert len({r[2] for r in rows if r[2]}) == sum(1 for r in rows if r[2])
        # no lost fill: every fill at the venue is booked exactly once
        venue_fills = {r[1] for r in acct.fills}
        booked = [r[0] for r in conn.execute("SELECT fill_id FROM trades").fetchall()]
        assert len(booked) == len(set(booked))
        assert venue_fills == set(booked)
        # never two positions in one market (a re-sent entry would open a second one)
        per_market = conn.execute("SELECT max(n) FROM (SELECT count(*) AS n FROM positions WHERE row_current_ind "
                                  "AND status = 'open' GROUP BY market_id) x").fetchone()[0]
        assert per_market in (None, 1)
        # positions equal the exchange's
        net = conn.execute("SELECT coalesce(sum(CASE WHEN side = 'yes' THEN quantity ELSE -quantity END), 0) "
                           "FROM positions WHERE row_current_ind AND status = 'open'").fetchone()[0]
        venue_pos = acct.positions.get(TICKER)
        assert net == (venue_pos.net if venue_pos is not None else 0)
        # there was real trading to get wrong: at least one new order in each trial the activity check counted
        assert len(venue_orders) >= killed_with_activity >= TRIALS // 2
        # every order that reached a terminal state at the venue is terminal in our books
        open_rows = conn.execute("SELECT count(*) FROM orders WHERE status NOT IN ('filled', 'canceled', 'rejected')"
                                 ).fetchone()[0]
        resting = sum(1 for o in acct.orders.values() if o.status == "resting")
        assert open_rows == resting
