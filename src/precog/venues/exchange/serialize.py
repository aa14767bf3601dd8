"""Engine objects -> Kalshi JSON. Every amount goes out twice, as Kalshi did during its transition:
the current fixed-point strings (`*_dollars` with 4 decimals, `*_fp` counts with 2) and the legacy
integers (cents, whole contracts), so clients of either generation (including the official SDK 3.2.0,
which still requires the integers) read the same numbers.
"""

from __future__ import annotations

import base64
import functools
import uuid
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from precog.domain.money import ZERO
from precog.venues.exchange.clock import iso_ms
from precog.venues.exchange.errors import InvalidRequest
from precog.venues.exchange.model import (
    DETERMINED,
    FINALIZED,
    NO,
    PRICES,
    TICKS,
    YES,
    Account,
    Candle,
    Event,
    Fill,
    Market,
    Order,
    Position,
    Series,
    Settlement,
    Trade,
)

_Q4 = Decimal("0.0001")
TICK_DOLLARS: tuple[str, ...] = tuple(f"{p.quantize(_Q4)}" for p in PRICES)
_DAY_MIN = 1440


def dollars(value: Decimal) -> str:
    """Fixed-point dollar string with 4 decimals (`"0.4200"`)."""
    return f"{value.quantize(_Q4, rounding=ROUND_HALF_UP)}"


def cents(value: Decimal) -> int:
    """Legacy integer cents (exact for whole-cent amounts, rounded half-up otherwise)."""
    return int((value * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def fp(count: int) -> str:
    """Fixed-point contract count (`"10.00"`)."""
    return f"{count}.00" if count >= 0 else f"-{-count}.00"


@functools.lru_cache(maxsize=4096)
def market_id(ticker: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"precog-exchange:{ticker}"))


def encode_cursor(kind: str, value: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, kind: str) -> int | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        k, _, v = raw.partition(":")
        if k != kind:
            raise ValueError(k)
        return int(v)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest(f"cursor {cursor!r} is not a cursor returned by this endpoint") from None


def _num(value: Decimal) -> int | float:
    """A JSON number where the spec demands one (fee_multiplier): int when whole."""
    return int(value) if value == value.to_integral_value() else float(value)


# ---------------------------------------------------------------------- catalogue


def series_json(s: Series, volume: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ticker": s.ticker, "frequency": s.frequency, "title": s.title, "category": s.category,
        "tags": list(s.tags), "settlement_sources": list(s.settlement_sources), "contract_url": s.contract_url,
        "contract_terms_url": s.contract_terms_url, "product_metadata": None, "fee_type": s.fee_type,
        "fee_multiplier": _num(s.fees.multiplier), "additional_prohibitions": [],
        "last_updated_ts": iso_ms(s.updated_ms),
    }
    if volume is not None:  # v3.13 has only the fixed-point count here (no legacy integer `volume`)
        out["volume_fp"] = fp(volume)
    return out


def event_json(e: Event, markets: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "event_ticker": e.event_ticker, "series_ticker": e.series_ticker, "sub_title": e.sub_title,
        "title": e.title, "collateral_return_type": "binary", "mutually_exclusive": e.mutually_exclusive,
        "category": e.category, "strike_date": iso_ms(e.strike_date_ms) if e.strike_date_ms else None,
        "strike_period": None, "available_on_brokers": False, "product_metadata": None,
        "last_updated_ts": iso_ms(e.updated_ms),
    }
    if markets is not None:
        out["markets"] = markets
    return out


def _previous(m: Market, now_ms: int) -> tuple[int, int, int]:
    """(yes bid, yes ask, last price) as of 24 h ago, from the minute candles."""
    target = now_ms // 60_000 - _DAY_MIN
    for minute in reversed(m.candles):
        if minute <= target:
            c = m.candles[minute]
            return c.bid[3], c.ask[3], (c.price[3] if c.price else 0)
    return 0, 0, 0


def _volume_24h(m: Market, now_ms: int) -> int:
    start = now_ms // 60_000 - _DAY_MIN
    total = 0
    for minute in reversed(m.candles):
        if minute <= start:
            break
        total += m.candles[minute].volume
    return total


# The market status words of older API generations (and of kalshi-python-sync 3.2.0, whose model accepts
# only initialized/active/closed/settled/determined and results yes/no/""), for `legacy_status` servers.
LEGACY_STATUS = {"inactive": "closed", "disputed": "determined", "amended": "determined", "finalized": "settled"}


def market_json(m: Market, now_ms: int, *, legacy_status: bool = False) -> dict[str, Any]:
    bid = m.book[YES].best
    no_bid = m.book[NO].best
    ask = TICKS - no_bid if no_bid else TICKS
    no_ask = TICKS - bid if bid else TICKS
    bid_size = m.book[YES].qty[bid] if bid else 0
    ask_size = m.book[NO].qty[no_bid] if no_bid else 0
    prev_bid, prev_ask, prev_price = _previous(m, now_ms)
    vol24 = _volume_24h(m, now_ms)
    out: dict[str, Any] = {
        "ticker": m.ticker, "event_ticker": m.event_ticker, "market_type": m.market_type, "title": m.title,
        "subtitle": m.subtitle, "yes_sub_title": m.yes_sub_title, "no_sub_title": m.no_sub_title,
        "created_time": iso_ms(m.created_ms), "updated_time": iso_ms(m.updated_ms),
        "open_time": iso_ms(m.open_ms), "close_time": iso_ms(m.close_ms),
        "expected_expiration_time": iso_ms(m.expected_expiration_ms), "expiration_time": iso_ms(m.expiration_ms),
        "latest_expiration_time": iso_ms(m.expiration_ms), "settlement_timer_seconds": m.settlement_timer_s,
        "status": m.status, "response_price_units": "usd_cent",
        "notional_value": 100, "notional_value_dollars": "1.0000",
        "yes_bid": bid, "yes_bid_dollars": TICK_DOLLARS[bid], "yes_bid_size_fp": fp(bid_size),
        "yes_ask": ask, "yes_ask_dollars": TICK_DOLLARS[ask], "yes_ask_size_fp": fp(ask_size),
        "no_bid": no_bid, "no_bid_dollars": TICK_DOLLARS[no_bid],
        "no_ask": no_ask, "no_ask_dollars": TICK_DOLLARS[no_ask],
        "last_price": m.last_tick, "last_price_dollars": TICK_DOLLARS[m.last_tick],
        "previous_yes_bid": prev_bid, "previous_yes_bid_dollars": TICK_DOLLARS[prev_bid],
        "previous_yes_ask": prev_ask, "previous_yes_ask_dollars": TICK_DOLLARS[prev_ask],
        "previous_price": prev_price, "previous_price_dollars": TICK_DOLLARS[prev_price],
        "volume": m.volume, "volume_fp": fp(m.volume), "volume_24h": vol24, "volume_24h_fp": fp(vol24),
        "liquidity": 0, "liquidity_dollars": "0.0000",
        "open_interest": m.open_interest, "open_interest_fp": fp(m.open_interest),
        "result": m.result, "can_close_early": m.can_close_early, "fractional_trading_enabled": False,
        "expiration_value": "", "category": "", "risk_limit_cents": 0, "tick_size": 1,
        "rules_primary": m.rules_primary, "rules_secondary": m.rules_secondary,
        "price_level_structure": "linear_cent",
        "price_ranges": [{"start": "0.0000", "end": "1.0000", "step": "0.0100"}],
        "is_provisional": False,
    }
    if m.settlement_value is not None and m.status in (DETERMINED, FINALIZED):
        out["settlement_value"] = cents(m.settlement_value)
        out["settlement_value_dollars"] = dollars(m.settlement_value)
        out["expiration_value"] = dollars(m.settlement_value)
    if m.settled_ms is not None:
        out["settlement_ts"] = iso_ms(m.settled_ms)
    if legacy_status:
        out["status"] = LEGACY_STATUS.get(m.status, m.status)
        if out["result"] == "scalar":
            out["result"] = ""
    return out


def orderbook_json(yes: list[tuple[int, int]], no: list[tuple[int, int]]) -> dict[str, Any]:
    yes_d = [[TICK_DOLLARS[t], fp(q)] for t, q in yes]
    no_d = [[TICK_DOLLARS[t], fp(q)] for t, q in no]
    return {
        "orderbook": {"yes": [[t, q] for t, q in yes], "no": [[t, q] for t, q in no],
                      "yes_dollars": yes_d, "no_dollars": no_d},
        "orderbook_fp": {"yes_dollars": yes_d, "no_dollars": no_d},
    }


def trade_json(t: Trade) -> dict[str, Any]:
    no_tick = TICKS - t.yes_tick
    return {
        "trade_id": t.trade_id, "ticker": t.ticker, "price": t.yes_tick, "count": t.count,
        "count_fp": fp(t.count), "yes_price": t.yes_tick, "no_price": no_tick,
        "yes_price_dollars": TICK_DOLLARS[t.yes_tick], "no_price_dollars": TICK_DOLLARS[no_tick],
        "taker_side": t.taker_side, "created_time": iso_ms(t.created_ms),
    }


def candlesticks_json(m: Market, start_s: int, end_s: int, period_min: int) -> list[dict[str, Any]]:
    """Aggregate the minute candles into periods ending within [start_s, end_s]."""
    buckets: dict[int, list[Candle]] = {}
    for minute, c in m.candles.items():
        end_period = (minute // period_min + 1) * period_min * 60
        if start_s <= end_period <= end_s:
            buckets.setdefault(end_period, []).append(c)
    out: list[dict[str, Any]] = []
    previous: int | None = None
    for minute, c in m.candles.items():  # last trade before the window, for price.previous
        if (minute // period_min + 1) * period_min * 60 >= start_s:
            break
        if c.price:
            previous = c.price[3]
    for end_period in sorted(buckets):
        cs = buckets[end_period]
        bid = [cs[0].bid[0], max(c.bid[1] for c in cs), min(c.bid[2] for c in cs), cs[-1].bid[3]]
        ask = [cs[0].ask[0], max(c.ask[1] for c in cs), min(c.ask[2] for c in cs), cs[-1].ask[3]]
        traded = [c for c in cs if c.price]
        vol = sum(c.volume for c in cs)
        price: dict[str, Any]
        if traded:
            p = [traded[0].price[0], max(c.price[1] for c in traded),  # type: ignore[index]
                 min(c.price[2] for c in traded), traded[-1].price[3]]  # type: ignore[index]
            mean = Decimal(sum(c.price_sum for c in traded)) / vol / TICKS
            price = {"open": p[0], "high": p[1], "low": p[2], "close": p[3],
                     "open_dollars": TICK_DOLLARS[p[0]], "high_dollars": TICK_DOLLARS[p[1]],
                     "low_dollars": TICK_DOLLARS[p[2]], "close_dollars": TICK_DOLLARS[p[3]],
                     "mean": int((mean * 100).to_integral_value(ROUND_HALF_UP)), "mean_dollars": dollars(mean)}
        else:
            price = {k: None for k in ("open", "high", "low", "close", "mean", "open_dollars", "high_dollars",
                                       "low_dollars", "close_dollars", "mean_dollars")}
        price["previous"] = previous
        price["previous_dollars"] = TICK_DOLLARS[previous] if previous is not None else None
        if traded:
            previous = traded[-1].price[3]  # type: ignore[index]
        oi = cs[-1].oi
        out.append({
            "end_period_ts": end_period,
            "yes_bid": _ohlc_json(bid), "yes_ask": _ohlc_json([a or TICKS for a in ask]), "price": price,
            "volume": vol, "volume_fp": fp(vol), "open_interest": oi, "open_interest_fp": fp(oi),
        })
    return out


def _ohlc_json(v: list[int]) -> dict[str, Any]:
    o, h, lo, c = v
    return {"open": o, "high": h, "low": lo, "close": c, "open_dollars": TICK_DOLLARS[o],
            "high_dollars": TICK_DOLLARS[h], "low_dollars": TICK_DOLLARS[lo], "close_dollars": TICK_DOLLARS[c]}


# ---------------------------------------------------------------------- portfolio


def order_json(o: Order, queue_position: int = 0) -> dict[str, Any]:
    yes_tick = o.yes_tick
    no_tick = TICKS - yes_tick
    return {
        "order_id": o.order_id, "user_id": o.user_id, "client_order_id": o.client_order_id,
        "ticker": o.ticker, "side": o.side, "action": o.action, "type": o.type, "status": o.status,
        "yes_price": yes_tick, "no_price": no_tick,
        "yes_price_dollars": TICK_DOLLARS[yes_tick], "no_price_dollars": TICK_DOLLARS[no_tick],
        "fill_count": o.fill_count, "fill_count_fp": fp(o.fill_count),
        "remaining_count": o.remaining, "remaining_count_fp": fp(o.remaining),
        "initial_count": o.initial_count, "initial_count_fp": fp(o.initial_count),
        "taker_fees": cents(o.taker_fees), "taker_fees_dollars": dollars(o.taker_fees),
        "maker_fees": cents(o.maker_fees), "maker_fees_dollars": dollars(o.maker_fees),
        "taker_fill_cost": cents(o.taker_fill_cost), "taker_fill_cost_dollars": dollars(o.taker_fill_cost),
        "maker_fill_cost": cents(o.maker_fill_cost), "maker_fill_cost_dollars": dollars(o.maker_fill_cost),
        "queue_position": queue_position,  # legacy (SDK 3.2.0); v3.13 serves it from the queue_position routes
        "expiration_time": iso_ms(o.expiration_ms) if o.expiration_ms else None,
        "created_time": iso_ms(o.created_ms), "last_update_time": iso_ms(o.updated_ms),
        "self_trade_prevention_type": o.stp, "order_group_id": o.order_group_id,
        "cancel_order_on_pause": o.cancel_on_pause, "subaccount_number": o.subaccount,
    }


def fill_json(f: Fill) -> dict[str, Any]:
    no_tick = TICKS - f.yes_tick
    side_tick = f.yes_tick if f.side == "yes" else no_tick
    return {
        "fill_id": f.fill_id, "trade_id": f.fill_id, "order_id": f.order_id, "client_order_id": f.client_order_id,
        "ticker": f.ticker, "market_ticker": f.ticker, "side": f.side, "action": f.action,
        "count": f.count, "count_fp": fp(f.count), "price": side_tick,
        "yes_price": f.yes_tick, "no_price": no_tick,
        "yes_price_dollars": TICK_DOLLARS[f.yes_tick], "no_price_dollars": TICK_DOLLARS[no_tick],
        "yes_price_fixed": TICK_DOLLARS[f.yes_tick], "no_price_fixed": TICK_DOLLARS[no_tick],
        "is_taker": f.is_taker, "fee_cost": dollars(f.fee), "created_time": iso_ms(f.created_ms),
        "ts": f.created_ms // 1000, "subaccount_number": 0,
    }


def position_json(p: Position) -> dict[str, Any]:
    exposure = p.cost[YES] + p.cost[NO]
    return {
        "ticker": p.ticker, "total_traded": cents(p.total_traded), "total_traded_dollars": dollars(p.total_traded),
        "position": p.net, "position_fp": fp(p.net),
        "market_exposure": cents(exposure), "market_exposure_dollars": dollars(exposure),
        "realized_pnl": cents(p.realized_pnl), "realized_pnl_dollars": dollars(p.realized_pnl),
        "resting_orders_count": p.resting_orders,
        "fees_paid": cents(p.fees_paid), "fees_paid_dollars": dollars(p.fees_paid),
        "last_updated_ts": iso_ms(p.updated_ms),
    }


def event_positions_json(positions: list[Position]) -> list[dict[str, Any]]:
    by_event: dict[str, list[Position]] = {}
    for p in positions:
        by_event.setdefault(p.event_ticker, []).append(p)
    out = []
    for event_ticker, ps in by_event.items():
        total_cost = sum((p.total_traded for p in ps), ZERO)
        shares = sum(p.held[YES] + p.held[NO] for p in ps)
        exposure = sum((p.cost[YES] + p.cost[NO] for p in ps), ZERO)
        pnl = sum((p.realized_pnl for p in ps), ZERO)
        fees = sum((p.fees_paid for p in ps), ZERO)
        out.append({
            "event_ticker": event_ticker, "total_cost": cents(total_cost), "total_cost_dollars": dollars(total_cost),
            "total_cost_shares": shares, "total_cost_shares_fp": fp(shares),
            "event_exposure": cents(exposure), "event_exposure_dollars": dollars(exposure),
            "realized_pnl": cents(pnl), "realized_pnl_dollars": dollars(pnl),
            "fees_paid": cents(fees), "fees_paid_dollars": dollars(fees),
        })
    return out


def settlement_json(s: Settlement) -> dict[str, Any]:
    return {
        "ticker": s.ticker, "event_ticker": s.event_ticker, "market_result": s.market_result,
        "yes_count": s.yes_count, "yes_count_fp": fp(s.yes_count),
        "yes_total_cost": cents(s.yes_total_cost), "yes_total_cost_dollars": dollars(s.yes_total_cost),
        "no_count": s.no_count, "no_count_fp": fp(s.no_count),
        "no_total_cost": cents(s.no_total_cost), "no_total_cost_dollars": dollars(s.no_total_cost),
        "revenue": cents(s.revenue), "revenue_dollars": dollars(s.revenue),
        "settled_time": iso_ms(s.settled_ms), "fee_cost": dollars(s.fee_cost),
        "value": cents(s.value), "value_dollars": dollars(s.value),
    }


def balance_json(acct: Account, portfolio_value: Decimal) -> dict[str, Any]:
    return {
        "balance": cents(acct.balance), "balance_dollars": dollars(acct.balance),
        "portfolio_value": cents(portfolio_value), "portfolio_value_dollars": dollars(portfolio_value),
        "updated_ts": acct.updated_ms // 1000,
    }


def mark_price(m: Market) -> Decimal:
    """A YES mark for portfolio value: mid of a two-sided book, else the last trade, else 0.50."""
    bid, nb = m.book[YES].best, m.book[NO].best
    if bid and nb:
        return (PRICES[bid] + PRICES[TICKS - nb]) / 2
    if m.last_tick:
        return PRICES[m.last_tick]
    return PRICES[TICKS // 2]
