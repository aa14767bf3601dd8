"""trade_strategies.yaml selection_logic `best_sharpe` (spec 4.3): when several strategies signal on one market, the
strategy version whose closed paper and live positions show the better Sharpe ratio wins; a version with fewer than
`min_sharpe_positions` closed positions has no ratio and loses to one that has one; with neither, priority decides
(then the larger edge), as with `priority`."""

from __future__ import annotations

import statistics
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from trading_dbkit import seed_world
from trading_testkit import NOW, engine, game, market, settings, strategy

from precog.config.errors import ConfigError
from precog.config.loader import load_config
from precog.trading.settings import TradingSettings
from precog.trading.snapshot import load_snapshot, load_strategy_sharpe

D = Decimal
EVENT = "KXNFLGAME-25DEC28KCBUF"

# a decided game: live trading (strategy 2) and settlement arbitrage (strategy 4) both signal on its market
_MARKET = market(bid="0.82", ask="0.83", yes_team="home", volume=5000)
_DECIDED = game("live", period=4, clock=60, home=28, away=17, possession="home", away_timeouts=0, observed_ago=2,
                metadata={"last_play_type": "touchdown"})
_UNITS = (strategy("settlement_arbitrage", strategy_id=4), strategy("live_trading", strategy_id=2))


def _chosen(method: str, sharpe: dict[int, Decimal]) -> str:
    eng = engine({_MARKET.ticker: "0.999"}, strategies=_UNITS, cfg=settings(selection_method=method))
    eng.set_strategy_sharpe(sharpe)
    result = eng.scan([_MARKET], {EVENT: _DECIDED}, positions=[], balance=D("10000"), now=NOW)
    assert result.signals == 2 and len(result.approved) == 1
    return str(result.approved[0].intent.strategy.name)


def test_the_strategy_with_the_better_sharpe_ratio_wins_the_market() -> None:
    assert _chosen("best_sharpe", {2: D("0.10"), 4: D("0.45")}) == "settlement_arbitrage"
    assert _chosen("best_sharpe", {2: D("0.45"), 4: D("0.10")}) == "live_trading"
    # a ratio beats none, whichever the priority
    assert _chosen("best_sharpe", {4: D("-0.20")}) == "settlement_arbitrage"
    # no ratio on either side, or equal ratios: priority (live trading before settlement arbitrage)
    assert _chosen("best_sharpe", {}) == "live_trading"
    assert _chosen("best_sharpe", {2: D("0.30"), 4: D("0.30")}) == "live_trading"
    # the ratios change nothing under the other methods
    assert _chosen("priority", {2: D("0.10"), 4: D("0.45")}) == "live_trading"


def _closed(conn: psycopg.Connection[object], strategy_id: int, pnls: list[str], mode: str = "paper") -> None:
    """Closed positions of the strategy, each 10 contracts bought at 0.50 ($5.00 of cost)."""
    for pnl in pnls:
        conn.execute(
            "INSERT INTO positions (position_id, market_id, platform_id, side, mode, entry_price, quantity,"
            " initial_quantity, fees, status, realized_pnl, strategy_id, exit_time)"
            " VALUES (nextval('position_id_seq'), 'KXM-EARLIER', 'local', 'yes', %s, 0.50, 10, 10, 0, 'closed', %s,"
            " %s, now())", (mode, D(pnl), strategy_id))


def test_the_ratio_comes_from_the_strategy_versions_closed_paper_and_live_positions(db_url: str) -> None:
    world = seed_world(db_url)
    conn = world.conn
    ids = [conn.execute("INSERT INTO strategies (strategy_name, strategy_version, sport, config, status) VALUES "
                        "(%s, 'v1.0', 'nfl', '{}', 'active') RETURNING strategy_id", (name,)).fetchone()[0]
           for name in ("steady", "volatile", "young", "flat")]
    steady, volatile, young, flat = ids
    _closed(conn, steady, ["0.50", "0.40", "0.60", "0.45"], mode="paper")
    _closed(conn, steady, ["0.55", "-0.10"], mode="live")
    _closed(conn, steady, ["-3.00"] * 5, mode="backtest")  # a backtest's record is not the strategy's
    _closed(conn, volatile, ["2.50", "-2.00", "1.50", "-1.75", "2.00", "-1.00"])
    _closed(conn, young, ["0.50"] * 5)  # below the minimum
    _closed(conn, flat, ["0.25"] * 6)  # returns that never vary: no ratio
    found = load_strategy_sharpe(conn, 6)
    assert set(found) == {steady, volatile}

    def expected(pnls: list[str]) -> Decimal:
        returns = [D(p) / D("5.00") for p in pnls]
        return (statistics.mean(returns) / statistics.stdev(returns)).quantize(D("0.0001"))

    assert found[steady] == expected(["0.50", "0.40", "0.60", "0.45", "0.55", "-0.10"])
    assert found[volatile] == expected(["2.50", "-2.00", "1.50", "-1.75", "2.00", "-1.00"])
    assert found[steady] > found[volatile]
    # the snapshot carries them only when best_sharpe is the selection method
    cfg = TradingSettings.from_config(load_config(use_env=False))
    assert load_snapshot(conn, cfg).strategy_sharpe == {}
    from dataclasses import replace

    sharpe_cfg = replace(cfg, selection_method="best_sharpe", min_sharpe_positions=6)
    assert load_snapshot(conn, sharpe_cfg).strategy_sharpe == found
    conn.close()


def test_best_sharpe_and_its_minimum_are_read_and_range_checked(tmp_path: Path) -> None:
    (tmp_path / "trade_strategies.yaml").write_text(
        "selection_logic:\n  method: best_sharpe\n  min_sharpe_positions: 30\n")
    cfg = TradingSettings.from_config(load_config(tmp_path, use_env=False, use_overrides=False))
    assert (cfg.selection_method, cfg.min_sharpe_positions) == ("best_sharpe", 30)
    (tmp_path / "trade_strategies.yaml").write_text("selection_logic:\n  min_sharpe_positions: 1\n")
    with pytest.raises(ConfigError, match="trade_strategies.yaml: selection_logic.min_sharpe_positions = 1"):
        load_config(tmp_path, use_env=False, use_overrides=False)
    (tmp_path / "trade_strategies.yaml").write_text("selection_logic:\n  method: best_sharpie\n")
    with pytest.raises(ConfigError, match="selection_logic.method"):
        load_config(tmp_path, use_env=False, use_overrides=False)
