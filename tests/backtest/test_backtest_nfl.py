"""Backtests over real NFL seasons through the real engine, exchange and database.

Honesty checks: a market priced exactly at the closing line cannot be beaten by a model that is no better
than it (no edge beyond noise, fees paid); a leaked result produces absurd profit and the leak guard fires;
a strategy that peeks at a result is stopped with LookAheadError.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backtest.bt_testkit import LeakedModel, PeekingModel, method_row
from precog.backtest.errors import BacktestError, LookAheadError
from precog.backtest.history import load_nfl
from precog.backtest.runner import BacktestOptions, run_backtest
from precog.backtest.walkforward import parse
from precog.db.connection import connect

SEASON = (date(2013, 9, 1), date(2013, 12, 31))


async def _run(db_url: str, nfl: Path, tmp_path: Path, **kw: Any):  # type: ignore[no-untyped-def]
    opts = BacktestOptions(data=nfl, start=kw.pop("start", SEASON[0]), end=kw.pop("end", SEASON[1]),
                           out=tmp_path / "reports", **kw)
    return await run_backtest(db_url, opts)


@pytest.fixture
def nfl(shared_data: Path) -> Path:
    return shared_data / "nfl"


async def test_closing_line_season_shows_no_edge_beyond_noise(db_url: str, nfl: Path, tmp_path: Path) -> None:
    result = await _run(db_url, nfl, tmp_path, methods=["nfl_elo_pregame@v1.1", "nfl_closing_line@v1.0"])
    s = result.summary
    by = {r["method"]: r for r in s["by_method"]}
    # the market's own price never shows an edge net of fees: it never trades
    assert by["nfl_closing_line@v1.0"]["positions"] == 0
    elo = by["nfl_elo_pregame@v1.1"]
    assert elo["positions"] >= 20, "Elo disagrees with the line often enough to trade"
    t = s["totals"]
    assert t["ledger_match"] is True  # our books equal the exchange's ledger to the cent, every window
    assert Decimal(t["fees_paid"]) > 0
    # no edge beyond noise: winners within 3 standard deviations of what the entry prices implied, and the
    # money lost or made is not a windfall
    assert s["leak_guard"]["fired"] is False
    assert abs(s["leak_guard"]["hit_rate_z"]) < 3
    assert Decimal(t["return_pct"]) < Decimal("0.25")
    # the closing line is the better forecast (Brier) on the same games, as it historically is
    cal = s["calibration"]["elo"]
    assert cal["n"] > 200 and cal["model"]["brier"] >= cal["market"]["brier"] - 0.01
    # entries pay the spread: on average the entry price is worse than the closing fair value
    assert Decimal(t["clv_per_contract"]) < 0
    # everything is stored as backtest P&L, never paper/live
    with psycopg.connect(db_url) as conn:
        modes = conn.execute("SELECT DISTINCT mode FROM positions UNION SELECT DISTINCT mode FROM trades").fetchall()
        assert modes == [("backtest",)]
        status, stored = conn.execute("SELECT status, summary FROM backtest_runs WHERE backtest_id = %s",
                                      (result.backtest_id,)).fetchone()
    assert status == "finished" and stored["totals"]["pnl"] == t["pnl"]
    # A/B: each method traded alone over the identical events (one engine run per method)
    lanes = {w["lane"]: w["lane_methods"] for w in s["windows"]}
    assert lanes == {0: ["nfl_elo_pregame@v1.1"], 1: ["nfl_closing_line@v1.0"]}
    assert s["windows"][0]["world"]["events"] == s["windows"][1]["world"]["events"]
    html = result.html_path.read_text()
    assert "data:image/png;base64," in html and "<script" not in html and "http" not in html.split("<body>")[1]
    assert json.loads(result.json_path.read_text())["totals"]["fills"] == t["fills"]


async def test_fills_only_at_prices_the_book_offered(db_url: str, nfl: Path, tmp_path: Path) -> None:
    result = await _run(db_url, nfl, tmp_path, methods=["nfl_elo_pregame@v1.1"], end=date(2013, 10, 31))
    hist = load_nfl(nfl, in_game=False)
    fair = {g.ticker(""): g.fair for g in hist.between(date(2013, 9, 1), date(2013, 10, 31))}
    cent = Decimal("0.01")
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT market_id, side, action, price FROM trades WHERE mode = 'backtest'").fetchall()
    assert rows
    for market, side, action, price in rows:
        f = fair[market.replace(f"B{result.backtest_id}L0W0-", "")]
        # the market maker's three levels: YES asks from ceil(f + 1c) up, YES bids from floor(f - 1c) down
        asks = [(f + cent).quantize(cent, rounding=ROUND_CEILING) + i * cent for i in range(3)]
        bids = [(f - cent).quantize(cent, rounding=ROUND_FLOOR) - i * cent for i in range(3)]
        if action == "buy":  # buy YES at a YES ask; buy NO at a NO ask (= 1 - YES bid)
            ladder = asks if side == "yes" else [1 - b for b in bids]
        else:  # a breaker's close-all sells: YES at a YES bid, NO at a NO bid (= 1 - YES ask)
            ladder = bids if side == "yes" else [1 - a for a in asks]
        assert price in ladder, (market, side, action, price, f)


async def test_leaked_result_gives_absurd_profit_and_the_guard_fires(db_url: str, nfl: Path, tmp_path: Path) -> None:
    hist = load_nfl(nfl, in_game=False)
    results = {g.game_id: g.settlement_value for g in hist.games}  # the whole file, read before the run
    with connect(db_url, autocommit=True) as conn:
        leaked = method_row(conn, "nfl_leaked", "leaked")
    result = await _run(db_url, nfl, tmp_path, extra_models={"leaked": LeakedModel(results)},
                        extra_methods=[leaked], end=date(2013, 11, 30))
    s = result.summary
    t = s["totals"]
    assert t["hit_rate"] > 0.95
    assert Decimal(t["return_pct"]) > Decimal("0.5")  # absurd for one part of a season
    assert s["leak_guard"]["fired"] is True
    assert any("impossible hit rate" in r for r in s["leak_guard"]["reasons"])
    assert any("Brier" in r for r in s["leak_guard"]["reasons"])
    assert "LEAK GUARD FIRED" in result.html_path.read_text()


async def test_a_strategy_that_peeks_is_stopped(db_url: str, nfl: Path, tmp_path: Path) -> None:
    with connect(db_url, autocommit=True) as conn:
        peeking = method_row(conn, "nfl_peeking", "peeking")
    with pytest.raises(LookAheadError, match="look-ahead: the result of"):
        await _run(db_url, nfl, tmp_path, extra_models={"peeking": PeekingModel()}, extra_methods=[peeking],
                   end=date(2013, 9, 30))
    with psycopg.connect(db_url) as conn:
        status, error = conn.execute("SELECT status, error FROM backtest_runs").fetchone()
    assert status == "failed" and error.startswith("look-ahead detected")


async def test_walk_forward_retrains_on_each_window(db_url: str, nfl: Path, tmp_path: Path) -> None:
    result = await _run(db_url, nfl, tmp_path, methods=["nfl_elo_pregame@v1.1"], start=date(2011, 9, 1),
                        end=date(2012, 11, 30), walk_forward=parse("train=1y,test=1m,step=1m"))
    wins = result.summary["windows"]
    assert [w["test"] for w in wins] == [["2012-09-01", "2012-09-30"], ["2012-10-01", "2012-10-31"],
                                         ["2012-11-01", "2012-11-30"]]
    hist = load_nfl(nfl, in_game=False)
    trained = []
    for w in wins:
        train_from, train_to = (date.fromisoformat(x) for x in w["train"])
        assert train_to <= date.fromisoformat(w["test"][0])
        # re-trained on the results of its own training window only
        in_window = sum(1 for g in hist.archive if train_from <= g.day < train_to)
        assert 0 < w["trained_on"]["elo"] <= in_window
        trained.append(w["trained_on"]["elo"])
    assert len(set(trained)) > 1  # the window slides: each re-training sees different games
    # each window trades with the cash the previous one ended with
    assert Decimal(wins[1]["start_cash"]) == Decimal(wins[0]["start_cash"]) + Decimal(wins[0]["pnl"])
    with psycopg.connect(db_url) as conn:
        runs = conn.execute("SELECT count(DISTINCT engine_run_id) FROM backtest_windows WHERE backtest_id = %s",
                            (result.backtest_id,)).fetchone()[0]
    assert runs == 3


async def test_in_game_states_from_play_by_play(db_url: str, nfl: Path, tmp_path: Path) -> None:
    # 2020 week 4 Thursday game: the default method is the in-game WP one (plays exist for 2020; no closing
    # line, so no pre-game market for the Elo method); the WP model is re-trained on the plays of the 2020 games
    # before it (weeks 1-3), nothing later
    result = await _run(db_url, nfl, tmp_path, start=date(2020, 10, 1), end=date(2020, 10, 2))
    s = result.summary
    assert [m["ref"] for m in s["methods"]] == ["nfl_live_wp@v1.1"]
    assert s["notes"] == []
    world = s["windows"][0]["world"]
    assert world["markets"] == 1 and world["states"] > 100 and world["finals"] == 1
    assert s["calibration"]["wp"]["n"] > 10  # the WP model forecast the live states
    wp = next(w for w in s["windows"] if "wp" in w["models"])["models"]["wp"]
    assert wp["status"] == "trained" and "2020-09-10" <= wp["first_game"] <= wp["last_game"] < "2020-10-01"


async def test_together_runs_methods_in_one_shared_portfolio(db_url: str, nfl: Path, tmp_path: Path) -> None:
    result = await _run(db_url, nfl, tmp_path, methods=["nfl_elo_pregame@v1.1", "nfl_closing_line@v1.0"],
                        end=date(2013, 9, 30), together=True)
    s = result.summary
    assert [(w["lane"], w["lane_methods"]) for w in s["windows"]] == [
        (0, ["nfl_elo_pregame@v1.1", "nfl_closing_line@v1.0"])]
    assert s["parameters"]["methods_together"] is True and s["totals"]["lanes"] == 1


async def test_a_method_without_markets_in_its_phase_is_named_in_the_notes(db_url: str, nfl: Path,
                                                                         tmp_path: Path) -> None:
    # 2021 has plays but no closing lines: the pre-game Elo method, named explicitly, can trade nothing, and the
    # report says why instead of showing an empty lane
    result = await _run(db_url, nfl, tmp_path, start=date(2021, 9, 12), end=date(2021, 9, 12),
                        methods=["nfl_elo_pregame@v1.1", "nfl_live_wp@v1.1"])
    s = result.summary
    notes = s["notes"]
    assert len(notes) == 1 and notes[0].startswith("nfl_elo_pregame@v1.1 trades pre-game markets and there are "
                                                   "none between 2021-09-12 and 2021-09-12")
    assert "1966-2014" in notes[0]
    elo = next(m for m in s["by_method"] if m["method"] == "nfl_elo_pregame@v1.1")
    assert elo["positions"] == 0
    html = result.html_path.read_text()  # type: ignore[union-attr]
    assert "none between 2021-09-12" in html


async def test_no_pre_game_prices_and_no_in_game_states_is_refused(db_url: str, nfl: Path, tmp_path: Path) -> None:
    with pytest.raises(BacktestError, match=r"no pre-game prices between 2021-09-12 and 2021-09-13 .*1966-2014.* "
                                            r"left out \(--no-in-game\): nothing to trade"):
        await _run(db_url, nfl, tmp_path, start=date(2021, 9, 12), end=date(2021, 9, 13), in_game=False)
