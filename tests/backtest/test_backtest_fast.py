"""The lean replay path (benchmarks, sweeps): fills come from the matching engine at quoted prices."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from precog.backtest.fast import FastReplay, ThresholdMethod, read_frames, replay_events
from precog.ingest.recorder import Recorder
from precog.venues.exchange.clock import SimClock
from precog.venues.exchange.engine import Exchange

TICKERS = ["KXREPLAY-A-Y", "KXREPLAY-B-Y"]


def _replay() -> tuple[FastReplay, ThresholdMethod]:
    ex = Exchange(SimClock(1_700_000_000_000))
    rt = FastReplay(ex, "me", TICKERS, bankroll=Decimal("1000"))
    strat = ThresholdMethod()
    rt.methods.append(strat)
    return rt, strat


def test_threshold_buys_below_030_and_sells_above_070_at_the_quoted_prices() -> None:
    rt, strat = _replay()
    events = [
        (0, 31, 33, 100, 100, 0),  # mid 0.32: remembered
        (1, 20, 22, 100, 100, 100),  # the other market's first quote: nothing to cross yet
        (0, 28, 30, 100, 5, 200),  # mid 0.29: crossed below 0.30 -> buy 10 at market (only 5 at 0.30 quoted)
        (0, 27, 29, 100, 100, 300),  # still below: no new order while holding
        (0, 69, 71, 40, 100, 400),  # mid 0.70: not above
        (0, 71, 73, 40, 100, 500),  # mid 0.72: crossed above 0.70 -> sell what we hold at the bid
    ]
    assert replay_events(rt, TICKERS, events) == 6
    fills = [(f.action, f.count, f.price) for f in rt.stats.fills]
    # the buy took the 5 quoted at 0.30 and nothing more: the book had nothing else to sell
    assert fills == [("buy", 5, Decimal("0.30")), ("sell", 5, Decimal("0.71"))]
    assert rt.stats.orders == 2 and strat.holding == {}
    acct = rt.exchange.account("me")
    fees = sum((f.fee for f in rt.stats.fills), Decimal(0))
    assert acct.balance == Decimal("1000") - 5 * Decimal("0.30") + 5 * Decimal("0.71") - fees
    assert rt.exchange.audit()["imbalance"] == 0


def test_a_resting_order_fills_only_when_a_later_quote_crosses_it() -> None:
    rt, _ = _replay()
    rt.methods.clear()
    rt.on_quote(TICKERS[0], 40, 45, 100, 100, 0)
    o = rt.order("manual", TICKERS[0], "yes", "buy", 10, Decimal("0.42"), tif="good_till_canceled")
    assert o is not None and o.fill_count == 0 and TICKERS[0] in rt.hot  # rests at 0.42, below the 0.45 ask
    rt.on_quote(TICKERS[0], 40, 44, 100, 100, 100)
    assert rt.exchange.get_order("me", o.order_id).fill_count == 0
    rt.on_quote(TICKERS[0], 38, 41, 100, 100, 200)  # the ask moves through our bid: we trade at our 0.42
    assert rt.exchange.get_order("me", o.order_id).fill_count == 10
    assert rt.held(TICKERS[0]) == (10, 0)


def test_read_frames_reads_the_recorder_format_and_stops_at_a_torn_tail(tmp_path: Path) -> None:
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    with Recorder(tmp_path, rotate_seconds=1e9) as rec:
        for i in range(3):
            rec.record("kalshi:ws", {"n": i}, t0 + timedelta(seconds=i))
        rec.record("espn:nfl", {"body": "{}"}, t0 + timedelta(seconds=5))
    (f,) = list(tmp_path.glob("*.jsonl.gz"))
    with gzip.open(f, "ab") as fh:
        fh.write(b'{"seq": 9, "source": "kalshi:ws", "recv_ns": 1')  # a crash mid-line
    got = list(read_frames(tmp_path))
    assert [p for _, p in got] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert got[1][0] - got[0][0] == 1_000_000_000
