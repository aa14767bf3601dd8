"""Kalshi payload parsing: every generation of every field, Decimal exactness, schema errors + alerts."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from precog.domain.market import MarketStatus
from precog.domain.order import Action, OrderStatus, Side
from precog.venues.kalshi import parsing as P
from precog.venues.kalshi.errors import KalshiSchemaError


class RecordingAlerts:
    """An AlertRaiser sink that keeps what it was given (the protocol's simplest implementation)."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []

    def raise_alert(self, alert_type: str, severity: str, component: str, message: str, details: Any = None, **kw: Any) -> int:
        self.alerts.append({"type": alert_type, "severity": severity, "component": component, "message": message,
                            "details": details, **kw})
        return len(self.alerts)


def decode(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)


def market_v3() -> dict[str, Any]:
    """A market as OpenAPI v3.13 sends it (dollars/fp strings only)."""
    return {
        "ticker": "KXNFLGAME-25OCT05-NEBUF-NE",
        "event_ticker": "KXNFLGAME-25OCT05-NEBUF",
        "market_type": "binary",
        "yes_sub_title": "New England",
        "no_sub_title": "New England",
        "created_time": "2025-09-30T12:00:00Z",
        "updated_time": "2025-09-30T12:00:00Z",
        "open_time": "2025-10-01T12:00:00Z",
        "close_time": "2025-10-05T20:00:00.123456789Z",
        "latest_expiration_time": "2025-10-19T20:00:00Z",
        "settlement_timer_seconds": 300,
        "status": "active",
        "notional_value_dollars": "1.0000",
        "yes_bid_dollars": "0.4275",
        "yes_ask_dollars": "0.4400",
        "no_bid_dollars": "0.5600",
        "no_ask_dollars": "0.5725",
        "yes_bid_size_fp": "120.00",
        "yes_ask_size_fp": "35.50",
        "last_price_dollars": "0.4300",
        "previous_yes_bid_dollars": "0.4000",
        "previous_yes_ask_dollars": "0.4200",
        "previous_price_dollars": "0.4100",
        "volume_fp": "1000.00",
        "volume_24h_fp": "250.00",
        "liquidity_dollars": "0.0000",
        "open_interest_fp": "800.00",
        "result": "",
        "can_close_early": True,
        "fractional_trading_enabled": False,
        "expiration_value": "",
        "rules_primary": "If New England wins ...",
        "rules_secondary": "",
        "price_level_structure": "linear_cent",
        "price_ranges": [{"start": "0.01", "end": "0.99", "step": "0.01"}],
        "some_field_from_the_future": {"x": 1},
    }


def market_legacy() -> dict[str, Any]:
    """A market as the older generation sent it (integer cents and counts only)."""
    return {
        "ticker": "KXNFLGAME-25OCT05-NEBUF-BUF",
        "event_ticker": "KXNFLGAME-25OCT05-NEBUF",
        "status": "open",
        "yes_bid": 42,
        "yes_ask": 44,
        "no_bid": 56,
        "no_ask": 58,
        "last_price": 43,
        "volume": 1000,
        "volume_24h": 250,
        "open_interest": 800,
        "notional_value": 100,
        "tick_size": 1,
        "close_time": "2025-10-05T20:00:00Z",
        "response_price_units": "usd_cent",
    }


def test_current_generation_market_is_exact_decimal() -> None:
    m = P.parse_market(decode(json.dumps(market_v3())))
    assert m.yes_bid == Decimal("0.4275") and isinstance(m.yes_bid, Decimal)
    assert (m.yes_ask, m.no_bid, m.no_ask, m.last_price) == (
        Decimal("0.44"), Decimal("0.56"), Decimal("0.5725"), Decimal("0.43"))
    assert m.yes_ask_size == Decimal("35.50") and m.volume == Decimal("1000")
    assert m.status is MarketStatus.OPEN and m.venue_status == "active"
    assert m.spread == Decimal("0.0125")
    assert m.notional_value == Decimal("1")
    assert m.close_time is not None and m.close_time.microsecond == 123456 and m.close_time.tzinfo is not None


def test_legacy_cents_market() -> None:
    m = P.parse_market(decode(json.dumps(market_legacy())))
    assert (m.yes_bid, m.yes_ask, m.no_bid, m.no_ask, m.last_price) == (
        Decimal("0.42"), Decimal("0.44"), Decimal("0.56"), Decimal("0.58"), Decimal("0.43"))
    assert m.volume == Decimal(1000) and m.open_interest == Decimal(800)
    assert m.tick_size == Decimal("0.01") and m.notional_value == Decimal(1)


def test_most_precise_form_wins_when_several_are_present() -> None:
    payload = market_legacy() | {"yes_bid_dollars": "0.4275", "volume_fp": "1000.50"}
    m = P.parse_market(payload)
    assert m.yes_bid == Decimal("0.4275")  # not the rounded legacy 42 cents
    assert m.volume == Decimal("1000.50")
    fixed = market_legacy() | {"yes_ask_fixed": "0.4412"}
    assert P.parse_market(fixed).yes_ask == Decimal("0.4412")


def test_legacy_sub_cent_number_is_decoded_exactly() -> None:
    # a legacy cents field holding 42.75 (JSON number) must not pass through a binary float
    payload = decode(json.dumps(market_legacy()).replace('"yes_bid": 42', '"yes_bid": 42.75'))
    assert P.parse_market(payload).yes_bid == Decimal("0.4275")


@pytest.mark.parametrize(
    ("venue", "ours"),
    [
        ("initialized", MarketStatus.CLOSED),
        ("unopened", MarketStatus.CLOSED),
        ("inactive", MarketStatus.HALTED),
        ("paused", MarketStatus.HALTED),
        ("active", MarketStatus.OPEN),
        ("open", MarketStatus.OPEN),
        ("closed", MarketStatus.CLOSED),
        ("determined", MarketStatus.CLOSED),
        ("disputed", MarketStatus.CLOSED),
        ("amended", MarketStatus.CLOSED),
        ("finalized", MarketStatus.SETTLED),
        ("settled", MarketStatus.SETTLED),
    ],
)
def test_every_venue_status_maps_onto_our_lifecycle(venue: str, ours: MarketStatus) -> None:
    m = P.parse_market(market_v3() | {"status": venue})
    assert m.status is ours and m.venue_status == venue


def test_unknown_status_is_a_schema_error() -> None:
    with pytest.raises(KalshiSchemaError, match="'status'.*'exploded'"):
        P.parse_market(market_v3() | {"status": "exploded"})


@pytest.mark.parametrize("field", ["yes_bid", "yes_ask", "no_bid", "no_ask", "last_price"])
def test_required_price_missing_in_every_form_names_the_field(field: str) -> None:
    payload = market_v3()
    del payload[f"{field}_dollars"]
    with pytest.raises(KalshiSchemaError) as info:
        P.parse_market(payload)
    assert info.value.field == field
    assert f"{field}_dollars" in str(info.value) and "missing" in str(info.value)


def test_null_required_price_is_missing_not_zero() -> None:
    with pytest.raises(KalshiSchemaError, match="yes_bid"):
        P.parse_market(market_v3() | {"yes_bid_dollars": None})


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("yes_bid_dollars", "abc", "not a decimal"),
        ("yes_bid_dollars", "1.5000", "outside [0, 1]"),
        ("yes_bid_dollars", "-0.0100", "outside [0, 1]"),
        ("yes_bid_dollars", "NaN", "not finite"),
        ("volume_fp", "ten", "not a decimal"),
        ("yes_bid_dollars", True, "boolean"),
        ("close_time", "yesterday", "RFC 3339"),
        ("ticker", 17, "not a string"),
    ],
)
def test_malformed_fields_name_the_field(field: str, value: Any, problem: str) -> None:
    with pytest.raises(KalshiSchemaError) as info:
        P.parse_market(market_v3() | {field: value})
    assert info.value.field == field and problem in str(info.value)


def test_malformed_precise_form_is_not_silently_replaced_by_legacy() -> None:
    with pytest.raises(KalshiSchemaError, match="yes_bid_dollars"):
        P.parse_market(market_legacy() | {"yes_bid_dollars": "4 2"})


def test_binary_float_is_refused() -> None:
    with pytest.raises(KalshiSchemaError, match="binary float"):
        P.parse_market(market_legacy() | {"yes_bid": 42.5})


def test_orderbook_fp_generation_and_implied_asks() -> None:
    body = {"orderbook_fp": {"yes_dollars": [["0.4000", "10.00"], ["0.4200", "5.00"]],
                             "no_dollars": [["0.5500", "7.00"], ["0.5600", "3.50"]]}}
    book = P.parse_orderbook(body, "T")
    assert [lv.price for lv in book.yes_bids] == [Decimal("0.42"), Decimal("0.40")]  # best first
    assert book.best_no_bid is not None and book.best_no_bid.quantity == Decimal("3.50")
    assert book.yes_ask == Decimal("0.44") and book.no_ask == Decimal("0.58")
    assert book.spread == Decimal("0.02")
    assert [lv.price for lv in book.yes_asks()] == [Decimal("0.44"), Decimal("0.45")]
    q = book.quote()
    assert (q.yes_bid, q.yes_ask, q.no_bid, q.no_ask) == (Decimal("0.42"), Decimal("0.44"), Decimal("0.56"), Decimal("0.58"))


def test_orderbook_legacy_generations() -> None:
    legacy = {"orderbook": {"yes": [[40, 10], [42, 5]], "no": None}}
    book = P.parse_orderbook(legacy, "T")
    assert [(lv.price, lv.quantity) for lv in book.yes_bids] == [(Decimal("0.42"), 5), (Decimal("0.40"), 10)]
    assert book.no_bids == () and book.yes_ask is None and book.spread is None
    dollars = {"orderbook": {"yes": [[40, 10]], "yes_dollars": [["0.4050", 10]], "no_dollars": [["0.5500", 2]]}}
    book = P.parse_orderbook(dollars, "T")
    assert book.yes_bids[0].price == Decimal("0.4050")  # dollars form preferred over cents
    assert book.yes_ask == Decimal("0.45")


def test_orderbook_errors() -> None:
    with pytest.raises(KalshiSchemaError, match="orderbook_fp"):
        P.parse_orderbook({}, "T")
    with pytest.raises(KalshiSchemaError, match="yes_dollars"):
        P.parse_orderbook({"orderbook_fp": {"yes_dollars": [["0.40"]], "no_dollars": []}}, "T")
    with pytest.raises(KalshiSchemaError, match="outside"):
        P.parse_orderbook({"orderbook_fp": {"yes_dollars": [["1.40", "1.00"]], "no_dollars": []}}, "T")


def order_v3(**over: Any) -> dict[str, Any]:
    return {
        "order_id": "o-1", "user_id": "u", "client_order_id": "c-1", "ticker": "T", "side": "no",
        "action": "buy", "type": "limit", "status": "resting", "yes_price_dollars": "0.3500",
        "no_price_dollars": "0.6500", "fill_count_fp": "2.00", "remaining_count_fp": "8.00",
        "initial_count_fp": "10.00", "taker_fees_dollars": "0.0200", "maker_fees_dollars": "0.0000",
        "taker_fill_cost_dollars": "1.3000", "maker_fill_cost_dollars": "0.0000",
        "created_time": "2025-10-01T12:00:00Z", **over,
    }


def test_order_current_and_legacy() -> None:
    o = P.parse_order(order_v3())
    assert (o.side, o.action, o.status) == (Side.NO, Action.BUY, OrderStatus.RESTING)
    assert o.price == Decimal("0.65") and o.yes_price == Decimal("0.35")
    assert (o.initial_count, o.fill_count, o.remaining_count) == (10, 2, 8)
    assert o.fees == Decimal("0.02") and o.taker_fill_cost == Decimal("1.3")
    legacy = {"order_id": "o-2", "client_order_id": "c-2", "ticker": "T", "side": "yes", "action": "sell",
              "type": "limit", "status": "executed", "yes_price": 61, "fill_count": 3, "remaining_count": 0,
              "taker_fees": 7, "taker_fill_cost": 183}
    o = P.parse_order(legacy)
    assert o.yes_price == Decimal("0.61") and o.no_price == Decimal("0.39")
    assert o.initial_count == 3 and o.taker_fees == Decimal("0.07") and o.taker_fill_cost == Decimal("1.83")


def test_order_missing_price_and_bad_enum() -> None:
    bad = order_v3()
    del bad["yes_price_dollars"], bad["no_price_dollars"]
    with pytest.raises(KalshiSchemaError, match="yes_price"):
        P.parse_order(bad)
    with pytest.raises(KalshiSchemaError, match="'side'.*'maybe'"):
        P.parse_order(order_v3(side="maybe"))
    with pytest.raises(KalshiSchemaError, match="remaining_count"):
        P.parse_order({k: v for k, v in order_v3().items() if k != "remaining_count_fp"})


def test_fill_position_settlement_balance_trade() -> None:
    fill = P.parse_fill({"fill_id": "f", "trade_id": "t", "order_id": "o", "ticker": "T", "market_ticker": "T",
                         "side": "yes", "action": "buy", "count_fp": "4.00", "yes_price_dollars": "0.4300",
                         "no_price_dollars": "0.5700", "is_taker": True, "fee_cost": "0.0700",
                         "created_time": "2025-10-01T12:00:00Z"})
    assert fill.price == Decimal("0.43") and fill.fee == Decimal("0.07") and fill.count == 4 and fill.is_taker
    legacy = {"trade_id": "t", "order_id": "o", "ticker": "T", "side": "no", "action": "sell", "count": 2,
              "yes_price": 30, "no_price": 70, "is_taker": False, "fee_cost": "0.0100", "created_time": 1700000000}
    legacy_fill = P.parse_fill(legacy)
    assert legacy_fill.fill_id == "t" and legacy_fill.price == Decimal("0.70") and legacy_fill.created_time is not None
    with pytest.raises(KalshiSchemaError, match="fee_cost"):  # required by the REST Fill and the stream's fill
        P.parse_fill({k: v for k, v in legacy.items() if k != "fee_cost"})

    pos = P.parse_position({"ticker": "T", "position_fp": "-5.00", "market_exposure_dollars": "2.8000",
                            "total_traded_dollars": "3.0000", "realized_pnl_dollars": "-0.1200",
                            "fees_paid_dollars": "0.0500", "resting_orders_count": 1,
                            "last_updated_ts": "2025-10-01T12:00:00Z"})
    assert pos.position == -5 and pos.side == "no" and pos.realized_pnl == Decimal("-0.12")
    legacy_pos = P.parse_position({"ticker": "T", "position": 3, "market_exposure": 129, "realized_pnl": 0,
                                   "fees_paid": 2, "total_traded": 129})
    assert legacy_pos.market_exposure == Decimal("1.29") and legacy_pos.fees_paid == Decimal("0.02")

    st_ = P.parse_settlement({"ticker": "T", "event_ticker": "E", "market_result": "scalar", "yes_count_fp": "10.00",
                              "yes_total_cost_dollars": "4.2000", "no_count_fp": "0.00", "no_total_cost_dollars": "0.0000",
                              "revenue": 375, "settled_time": "2025-10-06T00:00:00Z", "fee_cost": "0.3400", "value": 100})
    assert st_.revenue == Decimal("3.75") and st_.fee_cost == Decimal("0.34") and st_.value == Decimal(1)
    with pytest.raises(KalshiSchemaError, match="binary float"):  # value 37.5 came in as a float here
        P.parse_settlement({"ticker": "T", "market_result": "yes", "yes_count": 1, "no_count": 0,
                            "yes_total_cost": 40, "no_total_cost": 0, "revenue": 100, "value": 37.5})
    frac = P.parse_settlement(decode('{"ticker": "T", "market_result": "scalar", "yes_count": 1, "no_count": 0,'
                                     '"yes_total_cost": 40, "no_total_cost": 0, "revenue": 37.5, "value": 37.5}'))
    assert frac.value == Decimal("0.375") and frac.revenue == Decimal("0.375")

    bal = P.parse_balance({"balance": 123456, "portfolio_value": 5000, "updated_ts": 1700000000})
    assert bal.balance == Decimal("1234.56") and bal.portfolio_value == Decimal("50")
    assert P.parse_balance({"balance_dollars": "1234.5678"}).balance == Decimal("1234.5678")
    with pytest.raises(KalshiSchemaError, match="balance"):
        P.parse_balance({"portfolio_value": 1})

    trade = P.parse_trade({"trade_id": "t", "ticker": "T", "count_fp": "3.00", "yes_price_dollars": "0.4400",
                           "no_price_dollars": "0.5600", "taker_side": "yes", "created_time": "2025-10-01T12:00:00Z"})
    assert trade.yes_price == Decimal("0.44") and trade.count == 3
    legacy_trade = {"trade_id": "t", "ticker": "T", "count": 3, "yes_price": 44, "taker_side": "no", "ts": 1700000000}
    assert P.parse_trade(legacy_trade).no_price == Decimal("0.56")
    for missing in ("taker_side", "ts"):  # a side and a time in some form are required (REST and stream alike)
        with pytest.raises(KalshiSchemaError):
            P.parse_trade({k: v for k, v in legacy_trade.items() if k != missing})
    # the stream's canonical side wins over the deprecated one (a sell of YES takes the NO outcome)
    assert P.parse_trade(legacy_trade | {"taker_side": "yes", "taker_outcome_side": "no"}).taker_side == "no"


def test_series_event_candlestick() -> None:
    series = P.parse_series({"ticker": "KXNFLGAME", "title": "NFL", "category": "Sports", "tags": ["Football"],
                             "fee_type": "quadratic", "fee_multiplier": 1})
    assert series.fee_multiplier == 1 and series.tags == ("Football",)
    event = P.parse_event({"event_ticker": "E", "series_ticker": "KXNFLGAME", "title": "NE at BUF",
                           "sub_title": "", "mutually_exclusive": True, "markets": [market_v3()]})
    assert event.mutually_exclusive and event.markets[0].yes_bid == Decimal("0.4275")
    candle = P.parse_candlestick({"end_period_ts": 1700000000, "volume_fp": "10.00", "open_interest_fp": "5.00",
                                  "yes_bid": {"open_dollars": "0.4000", "high_dollars": "0.4500",
                                              "low_dollars": "0.3900", "close_dollars": "0.4400"},
                                  "yes_ask": {"open_dollars": "0.4200", "high_dollars": "0.4700",
                                              "low_dollars": "0.4100", "close_dollars": "0.4600"},
                                  "price": {"open_dollars": None, "mean_dollars": "0.4300"}}, "T")
    assert candle.yes_bid.high == Decimal("0.45") and candle.price.open is None
    assert candle.mean_price == Decimal("0.43")


def test_stream_payloads() -> None:
    q = P.parse_ticker({"market_ticker": "T", "price": 43, "yes_bid": 42, "yes_ask": 44,
                        "price_dollars": "0.4300", "yes_bid_dollars": "0.4250", "yes_ask_dollars": "0.4400",
                        "volume_fp": "10.00", "ts": 1700000000})
    assert q.yes_bid == Decimal("0.425") and q.no_bid == Decimal("0.56") and q.last_price == Decimal("0.43")
    for side in ("yes_bid", "yes_ask"):  # the stream client refuses a quote without a side, never reads "none"
        partial = {"market_ticker": "T", "yes_bid_dollars": "0.4200", "yes_ask_dollars": "0.4400"} | {
            f"{side}_dollars": None}
        assert getattr(P.parse_ticker(partial), side) is None  # field by field (the backtest's reader)
        with pytest.raises(KalshiSchemaError, match=side):
            P.parse_ticker_quote(partial)
    life = P.parse_lifecycle({"event_type": "determined", "market_ticker": "T", "result": "yes"})
    assert life.status is MarketStatus.CLOSED and life.result == "yes"
    assert P.parse_lifecycle({"event_type": "settled", "market_ticker": "T"}).status is MarketStatus.SETTLED
    assert P.parse_lifecycle({"market_ticker": "T", "status": "finalized"}).status is MarketStatus.SETTLED
    with pytest.raises(KalshiSchemaError, match="event_type"):
        P.parse_lifecycle({"market_ticker": "T"})


def test_parser_raises_one_alert_naming_the_field_and_reraises() -> None:
    alerts = RecordingAlerts()
    parser = P.KalshiParser(alerts)
    bad = market_v3()
    del bad["last_price_dollars"]
    with pytest.raises(KalshiSchemaError):
        parser(P.parse_market, bad)
    assert len(alerts.alerts) == 1
    alert = alerts.alerts[0]
    assert alert["type"] == "venue_schema_error" and alert["severity"] == "high"
    assert alert["details"]["field"] == "last_price" and alert["dedup_key"] == "kalshi:market:last_price"
    assert parser(P.parse_market, market_v3()).ticker.endswith("-NE")
    assert len(alerts.alerts) == 1


_price_text = st.decimals(min_value=0, max_value=1, places=4, allow_nan=False, allow_infinity=False).map(lambda d: f"{d:.4f}")


@settings(max_examples=300, deadline=None)
@given(yes_bid=_price_text, count=st.integers(min_value=0, max_value=10**9))
def test_dollar_strings_round_trip_exactly(yes_bid: str, count: int) -> None:
    m = P.parse_market(market_v3() | {"yes_bid_dollars": yes_bid, "volume_fp": f"{count}.00"})
    assert m.yes_bid == Decimal(yes_bid) and m.volume == Decimal(count)


@settings(max_examples=300, deadline=None)
@given(payload=st.dictionaries(st.sampled_from(list(market_v3())), st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=8), st.lists(st.integers(), max_size=2)), max_size=12))
def test_fuzzed_market_payloads_parse_or_raise_schema_error(payload: dict[str, Any]) -> None:
    try:
        P.parse_market(market_v3() | payload)
    except KalshiSchemaError as exc:
        assert exc.field
