"""Replaying a feed recording (`precog ingest run --record DIR`): recorded quotes are what we trade against."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg

from backtest.bt_testkit import FixedModel, method_row
from precog.backtest.runner import BacktestOptions, run_backtest
from precog.db.connection import connect
from precog.ingest.recorder import Recorder

TICKER = "KXNFLGAME-25NOV30DENWSH-WSH"  # the sample scoreboard's live game: DEN at WSH; YES = Washington


def _ticker(bid: str, ask: str, seq: int) -> str:
    return json.dumps({"type": "ticker", "sid": 1, "seq": seq, "msg": {
        "market_ticker": TICKER, "yes_bid_dollars": bid, "yes_ask_dollars": ask, "yes_bid_size_fp": "300",
        "yes_ask_size_fp": "250", "price_dollars": bid, "ts": 1764550000}})


def _record(folder: Path, shared_data: Path) -> datetime:
    t0 = datetime(2025, 12, 1, 1, 0, tzinfo=UTC)
    espn = (shared_data / "espn" / "nfl_scoreboard_2025_week13_sample.json").read_text()
    with Recorder(folder) as rec:
        rec.record("kalshi:ws", _ticker("0.4000", "0.4200", 1), t0)
        rec.record("espn:nfl", {"url": "https://site.api.espn.com/...", "body": espn}, t0 + timedelta(seconds=10))
        rec.record("kalshi:ws", _ticker("0.3800", "0.4000", 2), t0 + timedelta(seconds=20))
        rec.record("kalshi:ws", "not json at all", t0 + timedelta(seconds=25))
        rec.record("kalshi:ws", json.dumps({"type": "market_lifecycle_v2", "sid": 2, "seq": 1, "msg": {
            "market_ticker": TICKER, "event_type": "determined", "result": "yes"}}), t0 + timedelta(minutes=5))
    return t0


async def test_recorded_quotes_are_traded_and_settled(db_url: str, shared_data: Path, tmp_path: Path) -> None:
    _record(tmp_path / "rec", shared_data)
    with connect(db_url, autocommit=True) as conn:
        bull = method_row(conn, "wsh_bull", "bull")
    opts = BacktestOptions(data=tmp_path / "rec", out=tmp_path / "out", extra_models={
        "bull": FixedModel("bull", Decimal("0.75"))}, extra_methods=[bull])
    result = await run_backtest(db_url, opts)
    s = result.summary
    assert s["data"]["kind"] == "recording"
    world = s["windows"][0]["world"]
    assert world == {"markets": 1, "quotes": 2, "states": 1, "finals": 1, "events": 4}
    assert s["data"]["skipped_messages"] == 1  # the frame that is not JSON
    with psycopg.connect(db_url) as conn:
        fills = conn.execute("SELECT side, action, price, quantity FROM trades ORDER BY trade_id").fetchall()
    # YES bought at the recorded ask (0.42 for the first 250 recorded, deeper levels behind it)
    assert fills[0][:3] == ("yes", "buy", Decimal("0.4200")) and fills[0][3] <= 250
    assert all(f[2] in (Decimal("0.42"), Decimal("0.43"), Decimal("0.44")) for f in fills)
    t = s["totals"]
    assert t["ledger_match"] is True
    assert t["positions"] == 1 and t["winners"] == 1  # the recorded result: yes
    assert Decimal(t["pnl"]) > 0


async def test_from_to_name_days_of_the_configured_time_zone(db_url: str, shared_data: Path, tmp_path: Path) -> None:
    """The recording is a Sunday-night game in Washington (20:00 New York = 01:00 UTC Monday): `--from/--to` Sunday
    replays it (days are calendar days in system.defaults.timezone, America/New_York by default), Monday does not."""
    from datetime import date

    _record(tmp_path / "rec", shared_data)
    with connect(db_url, autocommit=True) as conn:
        bull = method_row(conn, "wsh_bull_sunday", "bull")
    opts = BacktestOptions(data=tmp_path / "rec", out=tmp_path / "out", start=date(2025, 11, 30),
                           end=date(2025, 11, 30), extra_models={"bull": FixedModel("bull", Decimal("0.75"))},
                           extra_methods=[bull])
    result = await run_backtest(db_url, opts)
    assert result.summary["windows"][0]["world"]["markets"] == 1
    assert result.summary["totals"]["positions"] == 1


async def test_progress_is_reported_every_few_hundred_events_and_at_the_end(db_url: str, tmp_path: Path) -> None:
    """The CLI's progress bar is fed every PROGRESS_EVERY_EVENTS events and once at the end, not on every event
    (a replay skips most steps: progress keyed to steps fired on every skipped event)."""
    from precog.backtest.runner import PROGRESS_EVERY_EVENTS, Progress

    t0 = datetime(2025, 12, 1, 1, 0, tzinfo=UTC)
    with Recorder(tmp_path / "rec") as rec:
        for k in range(2000):
            bid = 40 + k % 3
            rec.record("kalshi:ws", _ticker(f"0.{bid}00", f"0.{bid + 2}00", k), t0 + timedelta(seconds=k))
    seen: list[Progress] = []
    await run_backtest(db_url, BacktestOptions(data=tmp_path / "rec", out=tmp_path / "out"), progress=seen.append)
    assert seen[-1].events_done == seen[-1].events_total == 2000
    assert len(seen) <= 2000 // PROGRESS_EVERY_EVENTS + 2, len(seen)
    assert [p.events_done for p in seen] == sorted(p.events_done for p in seen)
