"""What an entry was worth, measured honestly: pre-game entries against the closing line, in-game entries by
the price drift over a fixed horizon after entry.

An in-game market's last price before settlement has converged to 0 or 1 with the game: measuring any entry
against it measures the result, not the price paid. One real game of 2020 (ARI at SF, SF favoured by 7 at the
close, ARI won 24-20) with its closing line and every play, two methods trading it through the real engine:
one before kickoff, one in the game."""

from __future__ import annotations

from bisect import bisect_right
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from backtest.bt_testkit import FixedModel, method_row, one_game_folder
from precog.backtest.feed import STATE
from precog.backtest.history import fair_from_spread, game_events, load_nfl
from precog.backtest.models import GameInfo
from precog.backtest.report import entry_value_stats, price_path
from precog.backtest.runner import BacktestOptions, run_backtest
from precog.db.connection import connect
from precog.domain.money import q4

DAY = date(2020, 9, 13)
HORIZON_MS = 15 * 60_000
DRIFT_KEY = "in_game_drift_15m_per_contract"
CLOSING_LINE = fair_from_spread(7.0, 13.5)  # P(SF), 0.6980


def _one_game(shared_data: Path, folder: Path) -> Path:
    return one_game_folder(shared_data, folder, spreadspoke="9/13/2020,2020,1,FALSE,San Francisco 49ers,20,24,"
                                                            "Arizona Cardinals,SF,-7,47,X,FALSE,,,,\n")


@pytest.fixture
async def run(db_url: str, shared_data: Path, tmp_path: Path) -> dict[str, Any]:
    folder = _one_game(shared_data, tmp_path / "nfl")
    with connect(db_url, autocommit=True) as conn:
        pre = method_row(conn, "clv_pre_game", "fixed_pre", "pre_game")
        live = method_row(conn, "clv_in_game", "fixed_live", "live")
    opts = BacktestOptions(data=folder, start=DAY, end=DAY, out=tmp_path / "out", train_years=0,
                           extra_models={"fixed_pre": FixedModel("fixed_pre", Decimal("0.85")),
                                         "fixed_live": FixedModel("fixed_live", Decimal("0.5"))},
                           extra_methods=[pre, live])
    result = await run_backtest(db_url, opts)
    events = list(game_events(load_nfl(folder).games, ""))
    return {"summary": result.summary, "html": result.html_path.read_text(),
            "quotes": [(e.ts_ms, e.data["fair"]) for e in events if "fair" in e.data],
            "kickoff": next(e.ts_ms for e in events if e.kind == STATE)}


def _ms(iso: str) -> int:
    return round(datetime.fromisoformat(iso).timestamp() * 1000)


def _side(fair: Decimal, side: str) -> Decimal:
    return fair if side == "yes" else 1 - fair


async def test_pre_game_entries_are_measured_against_the_closing_line(run: dict[str, Any]) -> None:
    s = run["summary"]
    trades = [t for t in s["trades"] if t["method"] == "clv_pre_game@v1.0"]
    assert trades and all(_ms(t["entry_time"]) < run["kickoff"] for t in trades)
    contracts = sum(t["quantity"] for t in trades)
    value = sum(((_side(CLOSING_LINE, t["side"]) - Decimal(t["entry_price"])) * t["quantity"] for t in trades),
                Decimal(0))
    row = next(r for r in s["by_method"] if r["method"] == "clv_pre_game@v1.0")
    # the closing fair value minus the price paid: the half spread (and any walk up the book), never the result
    assert row["clv_per_contract"] == str(q4(value / contracts))
    assert Decimal("-0.05") < Decimal(row["clv_per_contract"]) < 0
    assert row["clv_contracts"] == contracts
    assert row[DRIFT_KEY] is None and row["in_game_drift_contracts"] == 0
    assert all(t["entry_phase"] == "pre_game" for t in trades)


async def test_in_game_entries_are_measured_by_the_drift_after_entry_not_by_the_result(run: dict[str, Any]) -> None:
    s = run["summary"]
    trades = [t for t in s["trades"] if t["method"] == "clv_in_game@v1.0"]
    assert trades and all(_ms(t["entry_time"]) >= run["kickoff"] for t in trades)
    row = next(r for r in s["by_method"] if r["method"] == "clv_in_game@v1.0")
    assert row["clv_per_contract"] is None and row["clv_contracts"] == 0  # no closing line for an in-game entry
    times = [ts for ts, _ in run["quotes"]]
    last_quote = times[-1]
    measured = excluded = 0
    value = Decimal(0)
    for t in trades:
        target = _ms(t["entry_time"]) + HORIZON_MS
        if target > last_quote:  # the horizon runs into the end of the game: excluded, counted
            excluded += t["quantity"]
            continue
        fair = run["quotes"][bisect_right(times, target) - 1][1]
        value += (_side(fair, t["side"]) - Decimal(t["entry_price"])) * t["quantity"]
        measured += t["quantity"]
    assert measured > 0
    assert row[DRIFT_KEY] == str(q4(value / measured))
    assert (row["in_game_drift_contracts"], row["in_game_drift_excluded_contracts"]) == (measured, excluded)
    assert all(t["entry_phase"] == "in_game" for t in trades)


async def test_totals_html_and_definitions_name_both_measures(run: dict[str, Any]) -> None:
    s = run["summary"]
    t = s["totals"]
    assert t["clv_contracts"] + t["in_game_drift_contracts"] + t["in_game_drift_excluded_contracts"] == \
        sum(x["quantity"] for x in s["trades"])
    assert t["clv_per_contract"] == next(r for r in s["by_method"]
                                         if r["method"] == "clv_pre_game@v1.0")["clv_per_contract"]
    assert set(s["entry_value_definitions"]) == {"clv_per_contract", DRIFT_KEY, "entry_value_unmeasured_contracts"}
    assert "closing line" in s["entry_value_definitions"]["clv_per_contract"]
    html = run["html"]
    assert "CLV per contract (pre-game entries, against the closing line)" in html
    assert "in-game price drift 15 min after entry, per contract" in html


def test_entries_no_measure_applies_to_are_counted_not_measured() -> None:
    """An in-game entry whose horizon runs past the last quote (the price converges on the result there) and an
    entry in a market whose game start is unknown (a recording's market no scoreboard linked) are counted apart;
    a pre-game-only market's game starts at its kickoff, when it closes."""
    h = HORIZON_MS
    def game(in_game: bool, kickoff_ms: int, quotes: list[tuple[int, str]], started_ms: int | None) -> GameInfo:
        """A market's game as the run's world leaves it: its quotes with their times, and its first state."""
        return GameInfo("T", {"in_game": in_game, "kickoff_ms": kickoff_ms}, Decimal(quotes[-1][1]),
                        history=[Decimal(f) for _, f in quotes], history_ms=[t for t, _ in quotes],
                        started_ms=started_ms)

    paths = {
        # listed at 0.5, in the game from 10 s on (its first state), quoted on by each play, then settled
        "1:T": price_path(game(True, 10_000, [(0, "0.5"), (10_000, "0.6"), (10_000 + h, "0.7"),
                                              (10_000 + 2 * h, "0.99")], 10_000)),
        # quotes but no in-game state: the scoreboard never linked it
        "1:U": price_path(game(True, 0, [(0, "0.4"), (5_000, "0.45")], None)),
        # pre-game only: starts at its kickoff
        "1:V": price_path(game(False, 20_000, [(0, "0.5"), (15_000, "0.55")], None)),
    }

    def pos(market: str, ms: int, side: str, price: str, qty: int) -> dict[str, Any]:
        return {"run_id": 1, "market_id": market, "entry_time": datetime.fromtimestamp(ms / 1000, tz=UTC),
                "side": side, "entry_price": Decimal(price), "initial_quantity": qty}

    stats = entry_value_stats([
        pos("T", 10_000, "yes", "0.62", 10),  # fair 15 min later 0.7: drift +0.08
        pos("T", 10_000 + 2 * h - 1, "no", "0.32", 4),  # 15 min later is past the last quote: excluded
        pos("U", 6_000, "yes", "0.47", 3),  # no in-game state, trades in the game: start unknown
        pos("V", 16_000, "no", "0.46", 5),  # closing line 0.55: the NO side closes at 0.45, CLV -0.01
    ], paths)
    assert stats == {"clv_per_contract": "-0.0100", "clv_contracts": 5, DRIFT_KEY: "0.0800",
                     "in_game_drift_contracts": 10, "in_game_drift_excluded_contracts": 4,
                     "entry_value_unmeasured_contracts": 3}
