"""The fast DB-backed path (`precog.backtest.stepping`) books exactly what the reference path books.

Reference: the plain live Engine and LocalVenue, stepped at every event time, the market maker re-placing
its quotes on every quote event. Fast: idle steps skipped, venue reads cached, unchanged quotes kept. Same
data, fresh databases: the same trades to the cent, the same P&L, fewer engine steps.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from backtest.bt_testkit import MeanReversionModel, method_row
from precog.backtest.runner import BacktestOptions, run_backtest
from precog.config.loader import load_config
from precog.db.connection import connect
from precog.ingest.recorder import Recorder


def _recording(folder: Path, quotes: int = 3000, markets: int = 20, seed: int = 7, sizes: tuple[int, int] = (10, 500),
               spacing: float = 1, one_sided: float = 0.0, fair_range: tuple[float, float] = (0.2, 0.8),
               steps: tuple[float, float] = (0.003, 0.03), bounds: tuple[float, float] = (0.05, 0.95)) -> None:
    """Kalshi ticker frames, one every `spacing` seconds: per market a random-walk fair value, bid/ask 1-2 cents
    around it; calm (steps of about 0.3 cent) for the first 4/5, then ten times as jumpy (so the entry sizing's
    volatility ratio, which needs the calm baseline and the recent moves, comes into play). A share `one_sided`
    of the quotes has no bid on one side (a holder of that side must wait for a bid to exit)."""
    rng = random.Random(seed)
    fair = [rng.uniform(*fair_range) for _ in range(markets)]
    t0 = datetime(2025, 10, 5, 17, tzinfo=UTC)
    with Recorder(folder, rotate_seconds=1e9) as rec:
        for k in range(quotes):
            i = rng.randrange(markets)
            step = steps[0] if k < quotes * 4 // 5 else steps[1]
            fair[i] = min(bounds[1], max(bounds[0], fair[i] + rng.gauss(0.0, step)))
            c = round(fair[i] * 100)
            bid, ask = max(1, c - rng.randint(1, 2)), min(99, c + rng.randint(1, 2))
            if one_sided and rng.random() < one_sided:  # nobody bids for YES, or nobody for NO
                bid, ask = (0, ask) if rng.random() < 0.5 else (bid, 100)
            rec.record("kalshi:ws", {"type": "ticker", "sid": 1, "msg": {
                "market_ticker": f"KXREPLAY-M{i:02d}-Y", "yes_bid_dollars": f"0.{bid:02d}00",
                "yes_ask_dollars": f"{ask // 100}.{ask % 100:02d}00", "yes_bid_size_fp": str(rng.randint(*sizes)),
                "yes_ask_size_fp": str(rng.randint(*sizes))}}, t0 + timedelta(seconds=k * spacing))


def _breakers_reset_in_5_minutes(tmp_path: Path) -> Path:
    config = tmp_path / "config"
    config.mkdir()
    (config / "trading.yaml").write_text(
        "account:\n  daily_loss_limit_dollars: 40.00\n  max_trades_per_hour: 2000\n  max_trades_per_day: 20000\n"
        "circuit_breakers:\n  unusual_activity:\n    trades: 500\n    window_minutes: 5\n"
        "  reset:\n    consecutive_losses: 300\n    daily_loss_limit: 300\n    rapid_loss: 300\n")
    return config


async def _both(admin_db: Any, make_opts: Any, config_dir: Path | None = None
                ) -> list[tuple[dict[str, Any], list[tuple[Any, ...]]]]:
    out = []
    for fast in (False, True):
        url = admin_db()
        cfg = load_config(config_dir, db_url=url, use_overrides=False) if config_dir is not None else None
        result = await run_backtest(url, make_opts(url, fast), config=cfg)
        with psycopg.connect(url) as conn:
            trades = conn.execute("SELECT market_id, side, action, price, quantity, fees, execution_time, "
                                  "(trade_metadata->>'run_id') IS NOT NULL FROM trades ORDER BY trade_id").fetchall()
            ratios = conn.execute("SELECT metadata->>'volatility_ratio' FROM orders WHERE purpose = 'entry' "
                                  "ORDER BY created_at").fetchall()
            # the final version of every position: closed and settled ones whole (the fast path writes a mark
            # only with a state change, so these must still carry the reference's last mark and trailing stop)
            positions = conn.execute(
                "SELECT position_id, market_id, side, status, quantity, initial_quantity, entry_price, fees, "
                "realized_pnl, exit_reason, exit_priority, exit_price, trailing_stop_state, position_metadata, "
                "entry_time, exit_time, current_price, unrealized_pnl, unrealized_pnl_pct, last_update, "
                "last_check_time FROM positions WHERE row_current_ind AND status <> 'open' "
                "ORDER BY position_id").fetchall()
            versions = conn.execute("SELECT count(*) FROM positions").fetchone()
            # with the simulated times they carry: an entry's timeout, and the decision key (which holds the
            # decision interval an entry was decided in)
            orders = conn.execute("SELECT market_id, purpose, side, action, limit_price, quantity, time_in_force,"
                                  " status, filled_quantity, expires_at, decision_key, exit_condition"
                                  " FROM orders ORDER BY id").fetchall()
            timeouts = conn.execute("SELECT o.purpose, count(*) FROM order_events e JOIN orders o ON o.id = e.order_id"
                                    " WHERE e.reason LIKE '%%timed out%%' GROUP BY o.purpose").fetchall()
        result.summary["entry_volatility_ratios"] = [r[0] for r in ratios]
        result.summary["final_positions"] = positions
        result.summary["position_versions"] = versions[0] if versions else 0
        result.summary["orders"] = orders  # every order sent, including those that found nothing to trade
        result.summary["timeouts"] = dict(timeouts)  # orders canceled for their time: entries, exit attempts
        out.append((result.summary, trades))
    return out


async def test_fast_path_books_the_reference_trades_on_a_recording(make_database: Any, tmp_path: Path) -> None:
    _recording(tmp_path / "rec")

    def opts(url: str, fast: bool) -> BacktestOptions:
        with connect(url, autocommit=True) as conn:
            method = method_row(conn, "mean_reversion", "mean_reversion")
        return BacktestOptions(data=tmp_path / "rec", out=tmp_path / "out", fast_path=fast,
                               extra_models={"mean_reversion": MeanReversionModel()}, extra_methods=[method])

    (ref, ref_trades), (fast, fast_trades) = await _both(make_database, opts)
    assert len(ref_trades) >= 10, "the scenario must trade to prove anything"
    assert fast_trades == ref_trades  # same markets, sides, prices, quantities and fees, in the same order
    assert fast["totals"]["pnl"] == ref["totals"]["pnl"] and fast["totals"]["fills"] == ref["totals"]["fills"]
    assert fast["totals"]["ledger_match"] is True
    assert len(ref["final_positions"]) >= 3 and fast["final_positions"] == ref["final_positions"]
    assert fast["position_versions"] < ref["position_versions"]  # marks between state changes stay in memory
    assert ref["engine"]["position_marks_kept"] == 0 < fast["engine"]["position_marks_kept"]
    rw, fw = ref["windows"][0], fast["windows"][0]
    assert rw["engine_path"] == "reference" and fw["engine_path"] == "fast"
    assert rw["idle_steps_skipped"] == 0 and fw["idle_steps_skipped"] > 0
    # decisions that only repeat a refusal (same quote, forecast, trading state) recorded without the scan
    assert ref["engine"]["refusals_repeated"] == 0 and fast["engine"]["refusals_repeated"] > 100
    assert fw["entries_refused"] == rw["entries_refused"]  # counted as the reference counts them
    assert fw["position_checks"] == rw["position_checks"]  # skipped steps had no position check due
    # quotes placed in the exchange only when they could trade
    assert ref["engine"]["quotes_deferred"] == 0 and fast["engine"]["quotes_deferred"] > 2000
    assert fw["steps"] + fw["idle_steps_skipped"] == rw["steps"]  # every event time either stepped or proven idle
    assert fast["engine"]["events"] == ref["engine"]["events"] == 3000
    # entries were sized with the volatility ratio of each market's quote history (fed on idle steps too)
    ratios = ref["entry_volatility_ratios"]
    assert fast["entry_volatility_ratios"] == ratios
    assert any(r is not None and Decimal(r) >= 2 for r in ratios), ratios


async def test_fast_path_books_the_reference_trades_with_orders_working(make_database: Any,
                                                                         tmp_path: Path) -> None:
    # thin books (1-4 contracts a side, 40% of quotes one-sided) and a quote every 2 s on 8 markets: entries
    # fill in part and rest until their timeout, exits rest, walk and wait for bids. Steps where only such
    # orders are working are proven idle (or run just the entry scan) when nothing about them can change, so
    # both paths must still send, cancel, fill and walk the very same orders
    _recording(tmp_path / "rec", quotes=12000, markets=8, seed=5, sizes=(1, 4), spacing=2, one_sided=0.4)

    def opts(url: str, fast: bool) -> BacktestOptions:
        with connect(url, autocommit=True) as conn:
            method = method_row(conn, "mean_reversion", "mean_reversion")
        return BacktestOptions(data=tmp_path / "rec", out=tmp_path / "out", fast_path=fast,
                               extra_models={"mean_reversion": MeanReversionModel()}, extra_methods=[method])

    config = _breakers_reset_in_5_minutes(tmp_path)
    # positions checked as rarely as allowed: exit attempts then time out between checks, on steps that are
    # otherwise quiet
    (config / "position_management.yaml").write_text("monitoring:\n  normal_frequency: 120\n  urgent_frequency: 15\n")
    (ref, ref_trades), (fast, fast_trades) = await _both(make_database, opts, config)
    assert len(ref_trades) >= 100 and fast_trades == ref_trades
    assert fast["final_positions"] == ref["final_positions"]
    assert fast["windows"][0]["entries_refused"] == ref["windows"][0]["entries_refused"]
    assert fast["windows"][0]["breakers"] == ref["windows"][0]["breakers"]
    assert fast["timeouts"] == ref["timeouts"] and fast["orders"] == ref["orders"]
    assert fast["windows"][0]["position_checks"] == ref["windows"][0]["position_checks"]
    assert ref["timeouts"].get("entry", 0) >= 10 and ref["timeouts"].get("exit", 0) >= 2, ref["timeouts"]
    fw = fast["windows"][0]
    assert fast["engine"]["scan_only_steps"] > 0 and fw["idle_steps_skipped"] > 0


async def test_fast_path_halts_and_resumes_with_the_reference(make_database: Any, tmp_path: Path) -> None:
    # a losing method, a loss-streak breaker that closes everything and resets after 5 simulated minutes, and
    # room for many trades: the engine halts and resumes several times, and both paths do it at the same steps
    _recording(tmp_path / "rec", quotes=4000, markets=30, seed=11)
    config = _breakers_reset_in_5_minutes(tmp_path)

    def opts(url: str, fast: bool) -> BacktestOptions:
        with connect(url, autocommit=True) as conn:
            method = method_row(conn, "mean_reversion", "mean_reversion")
        return BacktestOptions(data=tmp_path / "rec", out=tmp_path / "out", fast_path=fast,
                               extra_models={"mean_reversion": MeanReversionModel()}, extra_methods=[method])

    (ref, ref_trades), (fast, fast_trades) = await _both(make_database, opts, config)
    breakers = ref["windows"][0]["breakers"]
    assert len(breakers) >= 2, breakers  # tripped, reset, traded on, tripped again
    assert fast["windows"][0]["breakers"] == breakers
    assert len(ref_trades) >= 20 and fast_trades == ref_trades
    assert fast["final_positions"] == ref["final_positions"]
    assert fast["entry_volatility_ratios"] == ref["entry_volatility_ratios"]
    assert fast["windows"][0]["entries_refused"] == ref["windows"][0]["entries_refused"]  # the same decisions
    assert fast["windows"][0]["position_checks"] == ref["windows"][0]["position_checks"]
    assert fast["engine"]["refusals_repeated"] > 0


async def test_fast_path_books_the_reference_trades_while_close_all_exits_wait(make_database: Any,
                                                                              tmp_path: Path) -> None:
    # the benchmark's data shape (a fair value walking by about a cent in [0.02, 0.98], a quote every 100 ms):
    # cheap contracts make positions of thousands, which a close-all breaker's market exits sell over several
    # quotes, waiting for bids in between: both paths must send, fill and check the very same
    _recording(tmp_path / "rec", quotes=12000, markets=50, seed=3, spacing=0.1, fair_range=(0.02, 0.98),
               steps=(0.01, 0.01), bounds=(0.02, 0.98))
    config = tmp_path / "config"
    config.mkdir()
    (config / "trading.yaml").write_text(
        "account:\n  daily_loss_limit_dollars: 2000.00\n  weekly_loss_limit_dollars: 10000.00\n"
        "  max_trades_per_hour: 2000\n  max_trades_per_day: 20000\n"
        "circuit_breakers:\n  unusual_activity:\n    trades: 500\n    window_minutes: 5\n"
        "  reset:\n    consecutive_losses: 600\n    daily_loss_limit: 600\n    weekly_loss_limit: 600\n"
        "    rapid_loss: 600\n")

    def opts(url: str, fast: bool) -> BacktestOptions:
        with connect(url, autocommit=True) as conn:
            method = method_row(conn, "mean_reversion", "mean_reversion")
        return BacktestOptions(data=tmp_path / "rec", out=tmp_path / "out", fast_path=fast,
                               bankroll=Decimal("1000000"), extra_models={"mean_reversion": MeanReversionModel()},
                               extra_methods=[method])

    (ref, ref_trades), (fast, fast_trades) = await _both(make_database, opts, config)
    assert len(ref_trades) >= 20 and fast_trades == ref_trades
    assert fast["final_positions"] == ref["final_positions"] and fast["orders"] == ref["orders"]
    assert fast["windows"][0]["breakers"] == ref["windows"][0]["breakers"]
    assert fast["windows"][0]["entries_refused"] == ref["windows"][0]["entries_refused"]
    assert any(b in ("daily_loss_limit", "rapid_loss", "consecutive_losses")
               for b in ref["windows"][0]["breakers"]), ref["windows"][0]["breakers"]
    # the liquidation waited for bids through event times the fast path skipped: their position checks are
    # recorded as the reference made them (every step checks every position under a close-all breaker)
    assert fast["engine"]["liquidation_waits_skipped"] > 0
    assert fast["windows"][0]["position_checks"] == ref["windows"][0]["position_checks"]


async def test_fast_path_books_the_reference_trades_on_an_nfl_sunday(make_database: Any, shared_data: Path,
                                                                       tmp_path: Path) -> None:
    # a Sunday of 2020 with in-game states for every game, the shipped methods as A/B lanes: Elo pre-game
    # (2020 has no pre-game price, the markets open at kickoff: it never trades, its steps are mostly idle; named
    # explicitly, since by default it is left out of such data) and the in-game WP model (re-trained on the
    # weeks before)
    def opts(url: str, fast: bool) -> BacktestOptions:
        return BacktestOptions(data=shared_data / "nfl", start=date(2020, 10, 4), end=date(2020, 10, 4),
                               out=tmp_path / "out", fast_path=fast,
                               methods=["nfl_elo_pregame@v1.1", "nfl_live_wp@v1.1"])

    (ref, ref_trades), (fast, fast_trades) = await _both(make_database, opts)
    assert {w["lane_methods"][0] for w in ref["windows"]} == {"nfl_elo_pregame@v1.1", "nfl_live_wp@v1.1"}
    assert len(ref_trades) >= 10
    assert fast_trades == ref_trades
    assert json.dumps(fast["by_method"]) == json.dumps(ref["by_method"])  # positions, hit rate, P&L, fees, CLV
    assert json.dumps(fast["calibration"]) == json.dumps(ref["calibration"])  # the same forecasts were asked for
    assert len(ref["final_positions"]) >= 5 and fast["final_positions"] == ref["final_positions"]
    assert fast["position_versions"] < ref["position_versions"]
    for rw, fw in zip(ref["windows"], fast["windows"], strict=True):
        assert fw["world"] == rw["world"]
        assert fw["steps"] + fw["idle_steps_skipped"] == rw["steps"]
    assert fast["engine"]["steps"] < ref["engine"]["steps"] // 2
