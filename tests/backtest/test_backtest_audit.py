"""Audit of the backtest report's honesty: every figure agrees with the stored rows and with the others."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg

from backtest.bt_testkit import FixedModel, method_row
from precog.backtest.runner import BacktestOptions, run_backtest
from precog.backtest.walkforward import parse
from precog.db.connection import connect
from precog.ingest.recorder import Recorder

TICKER = "KXNFLGAME-25NOV30DENWSH-WSH"


def _ticker(bid: str, ask: str, seq: int) -> str:
    return json.dumps({"type": "ticker", "sid": 1, "seq": seq, "msg": {
        "market_ticker": TICKER, "yes_bid_dollars": bid, "yes_ask_dollars": ask, "yes_bid_size_fp": "300",
        "yes_ask_size_fp": "250", "price_dollars": bid, "ts": 1764550000}})


async def test_a_window_hands_the_next_its_cash_not_the_marks_of_positions_it_could_not_close(
        db_url: str, tmp_path: Path) -> None:
    """A recorded market bought on Monday and not settled by the end of Monday's window: the position stays open
    in that window's engine run (its value unrealized). Tuesday's window opens a fresh exchange with the cash
    Monday ended with; crediting Tuesday with the open contracts' mark as cash would create money the stored
    positions never realized, and the report's P&L would no longer explain its equity."""
    t0 = datetime(2025, 12, 1, 15, 0, tzinfo=UTC)  # Monday 10:00 New York
    with Recorder(tmp_path / "rec") as rec:
        rec.record("kalshi:ws", _ticker("0.4000", "0.4200", 1), t0)
        rec.record("kalshi:ws", _ticker("0.4000", "0.4200", 2), t0 + timedelta(minutes=5))
        rec.record("kalshi:ws", _ticker("0.8000", "0.8200", 3), t0 + timedelta(days=1))  # Tuesday: too dear
        rec.record("kalshi:ws", _ticker("0.8000", "0.8200", 4), t0 + timedelta(days=1, minutes=5))
    with connect(db_url, autocommit=True) as conn:
        bull = method_row(conn, "audit_bull", "bull")
    opts = BacktestOptions(data=tmp_path / "rec", out=tmp_path / "out", start=date(2025, 11, 30),
                           end=date(2025, 12, 2), walk_forward=parse("train=1d,test=1d,step=1d"),
                           extra_models={"bull": FixedModel("bull", Decimal("0.70"))}, extra_methods=[bull])
    s = (await run_backtest(db_url, opts)).summary
    monday, tuesday = s["windows"]
    with psycopg.connect(db_url) as conn:
        open_ = conn.execute("SELECT count(*) FROM positions WHERE mode = 'backtest' AND status = 'open'").fetchone()
    assert open_ is not None and open_[0] >= 1  # the scenario: Monday ends holding contracts
    cash_monday = Decimal(monday["ledger"]["venue_cash"])
    assert Decimal(monday["end_cash"]) == cash_monday
    assert Decimal(tuesday["start_cash"]) == cash_monday


class _Days:
    """The part of a dataset `plan_windows` reads: its first and last day."""

    def date_range(self) -> tuple[date, date]:
        return date(1966, 9, 1), date(2023, 2, 28)


def test_train_years_is_that_many_calendar_years_before_from() -> None:
    """--train-years 3 with --from 2013-09-30 trains on results from 2010-09-30, not 2010-09-28: every day
    of --from is kept (only a February 29 has no twin, and then the training starts on the 28th)."""
    from precog.backtest.runner import plan_windows

    def train_from(start: date) -> date | None:
        return plan_windows(BacktestOptions(data=Path("."), start=start, end=date(2014, 2, 10)), _Days())[0].train_from

    assert train_from(date(2013, 9, 30)) == date(2010, 9, 30)
    assert train_from(date(2013, 10, 31)) == date(2010, 10, 31)
    assert train_from(date(2012, 2, 29)) == date(2009, 2, 28)
    assert train_from(date(2013, 9, 1)) == date(2010, 9, 1)
