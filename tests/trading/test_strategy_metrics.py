"""A strategy version's stored paper/live metrics (strategies.paper_trades_count, live_trades_count, paper_roi,
live_roi; spec 2.3 strategies) follow its closed and settled positions, as methods' do.

Positions close through the real `Portfolio` (exits booked from fills, a market settlement); the stored figures
are then right without anyone asking, `precog strategies list` shows them, and the activation gate counts the
same trades the listing shows. ROI is realized P&L over cost (entry price x contracts + all fees), the
definition of `methods.performance`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb
from typer.testing import CliRunner

from engine.bookkit import fill, order
from engine.conftest import make_rig  # noqa: F401  (fixture)
from precog.cli.main import app
from precog.domain.order import Action
from precog.trading.portfolio import Portfolio
from precog.trading.settlement import settle_market
from precog.trading.strategies import StrategyError, transition
from trading.trading_dbkit import create_testing_method, seed_world

T = datetime(2026, 1, 1, 18, tzinfo=UTC)


def _strategy(conn: psycopg.Connection[Any], version: str) -> int:
    row = conn.execute("INSERT INTO strategies (strategy_name, strategy_version, config, status)"
                       " VALUES ('metrics_probe', %s, %s, 'testing') RETURNING strategy_id",
                       (version, Jsonb({"min_edge": "0.05", "v": version}))).fetchone()
    assert row is not None
    return int(row[0])


class _Trader:
    """Round trips through one Portfolio: buy `qty` at `entry`, then sell them all at `exit` (or hold)."""

    def __init__(self, conn: psycopg.Connection[Any], mode: str) -> None:
        self.book = Portfolio(conn, "kalshi", mode)
        self.mode = mode
        self.n = 0

    def _next(self) -> int:
        self.n += 1
        return self.n

    def buy(self, ticker: str, qty: int, entry: str, *, strategy_id: int | None, method_id: int | None = None
            ) -> int:
        n = self._next()
        buy = replace(order(ticker, n, "buy", None, qty, mode=self.mode), strategy_id=strategy_id,
                      method_id=method_id)
        booked = self.book.book_fill(fill(ticker, f"{self.mode}-f{n}", Action.BUY, qty, entry), buy, T)
        assert booked is not None
        return booked.position.position_id

    def round_trip(self, ticker: str, qty: int, entry: str, exit_: str, *, strategy_id: int | None,
                   method_id: int | None = None) -> None:
        pid = self.buy(ticker, qty, entry, strategy_id=strategy_id, method_id=method_id)
        n = self._next()
        sell = replace(order(ticker, n, "sell", pid, qty, mode=self.mode), strategy_id=strategy_id,
                       method_id=method_id)
        booked = self.book.book_fill(fill(ticker, f"{self.mode}-f{n}", Action.SELL, qty, exit_), sell, T)
        assert booked is not None and booked.position.status == "closed"


def _stored(conn: psycopg.Connection[Any], strategy_id: int) -> tuple[Any, ...]:
    row = conn.execute("SELECT paper_trades_count, paper_roi, live_trades_count, live_roi FROM strategies"
                       " WHERE strategy_id = %s", (strategy_id,)).fetchone()
    assert row is not None
    return tuple(row)


def _trade_book(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    """Version v1.0: paper - a win, a loss (fees on every fill), a settled win, one still open; live - a win.
    Version v1.1 (another strategy version): a paper loss. Returns (v1.0, v1.1) ids."""
    sid, other = _strategy(conn, "v1.0"), _strategy(conn, "v1.1")
    paper, live = _Trader(conn, "paper"), _Trader(conn, "live")
    # realized 60 - 0.10 - 40.10 = 19.80 on a cost of 40 + 0.20 fees
    paper.round_trip("KXM-WIN", 100, "0.40", "0.60", strategy_id=sid)
    # realized 15 - 0.10 - 25.10 = -10.20 on a cost of 25 + 0.20
    paper.round_trip("KXM-LOSS", 50, "0.50", "0.30", strategy_id=sid)
    # settled at YES: payout 10.00 - 9.10 = 0.90 on a cost of 9 + 0.10
    paper.buy("KXM-SETTLE", 10, "0.90", strategy_id=sid)
    assert len(settle_market(paper.book, "KXM-SETTLE", Decimal("1"), T)) == 1
    paper.buy("KXM-OPEN", 20, "0.50", strategy_id=sid)  # open: not a closed trade
    # live: 7 - 0.10 - 5.10 = 1.80 on 5.20
    live.round_trip("KXM-LIVE", 10, "0.50", "0.70", strategy_id=sid)
    paper.round_trip("KXM-OTHER", 10, "0.50", "0.10", strategy_id=other)
    return sid, other


# paper: (19.80 - 10.20 + 0.90) / (40.20 + 25.20 + 9.10) = 10.50 / 74.50 = 0.14093...
PAPER_ROI = Decimal("0.1409")
LIVE_ROI = Decimal("0.3462")  # 1.80 / 5.20 = 0.34615...


def test_closing_and_settling_positions_keeps_the_stored_metrics_true(conn: psycopg.Connection[Any]) -> None:
    conn.autocommit = True
    sid, other = _trade_book(conn)
    # nobody asked for a refresh: the closes themselves updated the rows
    assert _stored(conn, sid) == (3, PAPER_ROI, 1, LIVE_ROI)
    # the other version: 1 - 0.10 - 5.10 = -4.20 on 5.20 = -0.80769...
    assert _stored(conn, other) == (1, Decimal("-0.8077"), 0, None)


def test_strategies_list_shows_the_paper_and_live_figures(conn: psycopg.Connection[Any], db_url: str) -> None:
    conn.autocommit = True
    sid, _ = _trade_book(conn)
    runner = CliRunner()
    env = {"PRECOG_DATABASE_URL": db_url, "NO_COLOR": "1", "COLUMNS": "250"}
    listed = runner.invoke(app, ["strategies", "list", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    rows = {r["strategy_id"]: r for r in json.loads(listed.stdout)}
    mine = rows[sid]
    assert (mine["paper_trades_count"], mine["paper_roi"], mine["live_trades_count"], mine["live_roi"]) == (
        3, "0.1409", 1, "0.3462")
    table = runner.invoke(app, ["strategies", "list"], env=env)
    assert table.exit_code == 0, table.output
    line = next(x for x in table.stdout.splitlines() if "metrics_probe@v1.0" in x)
    assert "0.1409" in line and "0.3462" in line and " 3 " in line and " 1 " in line, line
    shown = runner.invoke(app, ["strategies", "show", "metrics_probe@v1.0", "--json"], env=env)
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert (data["paper_trades_count"], data["paper_roi"], data["live_trades_count"], data["live_roi"]) == (
        3, "0.1409", 1, "0.3462")


def test_listing_brings_positions_closed_elsewhere_into_the_figures(conn: psycopg.Connection[Any],
                                                                     db_url: str) -> None:
    """Positions closed before the metrics were kept (or written outside the Portfolio) count once listed."""
    sid = _strategy(conn, "v1.0")
    for i, pnl in enumerate(("2.00", "-1.00")):
        conn.execute(
            "INSERT INTO positions (position_id, market_id, platform_id, side, mode, entry_price, quantity,"
            " initial_quantity, fees, status, realized_pnl, strategy_id, exit_time)"
            " VALUES (nextval('position_id_seq'), %s, 'kalshi', 'yes', 'paper', 0.50, 0, 10, 0.20, 'closed', %s, %s,"
            " now())", (f"KXM-OLD{i}", Decimal(pnl), sid))
    conn.commit()
    listed = CliRunner().invoke(app, ["strategies", "list", "--json"],
                                env={"PRECOG_DATABASE_URL": db_url, "NO_COLOR": "1"})
    assert listed.exit_code == 0, listed.output
    mine = next(r for r in json.loads(listed.stdout) if r["strategy_id"] == sid)
    # (2.00 - 1.00) / (2 x (5.00 + 0.20)) = 0.09615...
    assert (mine["paper_trades_count"], mine["paper_roi"]) == (2, "0.0962")


def test_the_activation_gate_counts_what_the_listing_shows(conn: psycopg.Connection[Any]) -> None:
    conn.autocommit = True
    sid, _ = _trade_book(conn)
    with pytest.raises(StrategyError, match=r"3 closed paper trades \(need >= 50\)"):
        transition(conn, "metrics_probe@v1.0", "active", by="bob")
    assert _stored(conn, sid)[0] == 3


def test_a_methods_stored_metrics_follow_its_closes_too(db_url: str, conn: psycopg.Connection[Any]) -> None:
    world = seed_world(db_url)
    method = create_testing_method(world.conn)
    conn.autocommit = True
    paper = _Trader(conn, "paper")
    paper.round_trip("KXM-M1", 100, "0.40", "0.60", strategy_id=method.strategy_id, method_id=method.method_id)
    row = conn.execute("SELECT paper_trades_count, paper_roi, total_trades FROM methods WHERE method_id = %s",
                       (method.method_id,)).fetchone()
    assert row is not None and tuple(row) == (1, Decimal("0.4925"), 1)  # 19.80 / 40.20
    assert _stored(conn, method.strategy_id)[:2] == (1, Decimal("0.4925"))



def test_a_metrics_refresh_that_fails_never_undoes_the_close(conn: psycopg.Connection[Any],
                                                             caplog: pytest.LogCaptureFixture) -> None:
    # the strategies table refuses every update (a fault in the database itself): the fill that closes the
    # position is still booked, the position closed, and the failure logged
    conn.autocommit = True
    sid = _strategy(conn, "v1.0")
    conn.execute("CREATE FUNCTION refuse_update() RETURNS trigger LANGUAGE plpgsql AS "
                 "$$ BEGIN RAISE EXCEPTION 'strategies are read-only today'; END $$")
    conn.execute("CREATE TRIGGER refuse BEFORE UPDATE ON strategies FOR EACH ROW EXECUTE FUNCTION refuse_update()")
    paper = _Trader(conn, "paper")
    paper.round_trip("KXM-CLOSE", 100, "0.40", "0.60", strategy_id=sid)  # asserts the close was booked
    row = conn.execute("SELECT status, realized_pnl FROM positions WHERE row_current_ind AND market_id = 'KXM-CLOSE'"
                       ).fetchone()
    assert row is not None and tuple(row) == ("closed", Decimal("19.80"))
    assert conn.execute("SELECT count(*) FROM trades WHERE market_id = 'KXM-CLOSE'").fetchone()[0] == 2
    assert _stored(conn, sid)[:2] == (0, None)
    assert "not refreshed after position" in caplog.text and "read-only today" in caplog.text

async def test_an_engine_start_brings_in_positions_closed_before_the_figures_were_kept(
        make_rig: Any) -> None:  # noqa: F811
    # a paper position closed by the engine; then the stored figures are as an older version left them (never
    # written): the next engine start recomputes them for the methods it runs and their strategy versions
    rig = make_rig()
    engine = await rig.engine_with_position("0.62")
    rig.probs.p[rig.ticker] = Decimal("0.30")  # the edge is gone: the position is closed
    await rig.run_until(lambda: not rig.open_positions())
    method = engine.methods[0]
    rig.conn.execute("UPDATE strategies SET paper_trades_count = 0, paper_roi = NULL WHERE strategy_id = %s",
                     (method.strategy_id,))
    rig.conn.execute("UPDATE methods SET paper_trades_count = 0, paper_roi = NULL WHERE method_id = %s",
                     (method.method_id,))
    await engine.stop()
    await rig.make_engine().start()
    closed = rig.rows("SELECT count(*) FROM positions WHERE row_current_ind AND status IN ('closed', 'settled') "
                      "AND mode = 'paper' AND strategy_id = %s", method.strategy_id)[0][0]
    assert closed >= 1
    assert rig.rows("SELECT paper_trades_count, paper_roi IS NOT NULL FROM strategies WHERE strategy_id = %s",
                    method.strategy_id) == [(closed, True)]
    assert rig.rows("SELECT paper_trades_count FROM methods WHERE method_id = %s", method.method_id) == [(closed,)]
