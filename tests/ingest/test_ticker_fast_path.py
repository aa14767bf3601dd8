"""The ingest fast path for ticker frames agrees with the venue client's full parser, and declines what it
cannot read exactly (the full parser then decides)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from precog.ingest.market_feed import fast_ticker
from precog.venues.kalshi.parsing import parse_ticker

D = Decimal
TIME = datetime(2025, 11, 24, 16, 0, 0, 123000, tzinfo=UTC)


def frame(**msg: Any) -> str:
    body = {"market_ticker": "KXNFLGAME-25NOV30DENWAS-DEN", "market_id": "abc", "price": 41, "yes_bid": 40,
            "yes_ask": 43, "price_dollars": "0.4100", "yes_bid_dollars": "0.4000", "yes_ask_dollars": "0.4300",
            "no_bid_dollars": "0.5700", "no_ask_dollars": "0.6000", "yes_bid_size_fp": "10.00",
            "volume": 12, "volume_fp": "12.00", "open_interest": 4, "open_interest_fp": "4.00",
            "dollar_volume": 5, "ts": 1764000000, "time": "2025-11-24T16:00:00.123Z"}
    body.update(msg)
    return json.dumps({"type": "ticker", "sid": 3, "seq": 7, "msg": {k: v for k, v in body.items() if v != "-"}})


def test_current_frames_match_the_full_parser() -> None:
    text = frame()
    fast = fast_ticker(text, TIME)
    full = parse_ticker(json.loads(text)["msg"])
    assert fast is not None
    assert (fast.ticker, fast.yes_bid, fast.yes_ask, fast.last_price, fast.volume, fast.open_interest) == (
        full.ticker, full.yes_bid, full.yes_ask, full.last_price, full.volume, full.open_interest)
    assert (fast.yes_bid, fast.yes_ask, fast.last_price, fast.volume) == (D("0.40"), D("0.43"), D("0.41"), D(12))
    assert fast.ts == TIME  # the frame's millisecond time, not the whole-second `ts`


def test_optional_fields_and_second_times() -> None:
    quote = fast_ticker(frame(price_dollars="-", volume_fp="-", open_interest_fp="-"), None)
    assert quote is not None
    assert quote.last_price is None and quote.volume == D(12) and quote.open_interest == D(4)  # integer fields
    assert quote.ts == datetime.fromtimestamp(1764000000, UTC)
    # a null `*_fp` is absent: the legacy integer is read, as the full parser does
    text = frame(open_interest_fp=None)
    quote = fast_ticker(text, None)
    assert quote is not None and quote.open_interest == parse_ticker(json.loads(text)["msg"]).open_interest == D(4)


@pytest.mark.parametrize("changes", [
    {"yes_bid_dollars": "-"},  # legacy cents-only frames
    {"yes_ask_dollars": 0.43},  # a number where the venue sends a string
    {"yes_bid_dollars": "NaN"},
    {"yes_bid_dollars": "forty"},
    {"market_ticker": 17},
    # counts and the last price it cannot read exactly: the full parser reads them (a number under a *_dollars
    # or *_fp name) or rejects the frame with a schema alert (a boolean, NaN); never silently dropped (audit s16)
    {"volume_fp": True},
    {"volume_fp": 12.5},
    {"open_interest_fp": "NaN"},
    {"volume_fp": "Infinity"},
    {"price_dollars": 0.41},
])
def test_frames_it_cannot_read_exactly_go_to_the_full_parser(changes: dict[str, Any]) -> None:
    assert fast_ticker(frame(**changes), TIME) is None


def test_not_json_or_not_a_ticker_is_declined() -> None:
    assert fast_ticker('{"type":"ticker","sid":3,"seq":7,"msg":{"market_ticker":', TIME) is None
    assert fast_ticker(json.dumps({"type": "ok", "id": 1}), TIME) is None
