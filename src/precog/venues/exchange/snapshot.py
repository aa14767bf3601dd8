"""Save and restore the whole exchange as JSON (`precog exchange serve --state FILE`).

The exchange lives in memory; a snapshot lets a paper-trading exchange survive a restart with its
markets, books (in queue order), orders, balances, positions, trades and API keys. Money is written as
Decimal strings. Writes go to a temporary file that replaces the old one, so a crash never leaves half a
snapshot behind.
"""

from __future__ import annotations

import heapq
import itertools
import json
import os
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from precog.domain.fees import FeeSchedule
from precog.venues.exchange.auth import KeyRegistry
from precog.venues.exchange.clock import Clock
from precog.venues.exchange.engine import Exchange
from precog.venues.exchange.model import (
    PRICES,
    R_M_FEE,
    R_M_USER,
    R_T_FEE,
    R_T_USER,
    R_TICKER,
    RESTING,
    TICKS,
    Account,
    Candle,
    Event,
    Market,
    Order,
    Position,
    Series,
    Settlement,
)

VERSION = 1
_DECIMAL_ORDER_FIELDS = ("taker_fees", "maker_fees", "fee_basis", "taker_fill_cost", "maker_fill_cost", "hold",
                         "unit_hold")


class SnapshotError(ValueError):
    """A snapshot file that cannot be read back (names the file and the problem)."""


def _counter_next(counter: itertools.count[int]) -> int:
    return int(counter.__reduce__()[1][0])  # type: ignore[index]


def dump(exchange: Exchange, keys: KeyRegistry | None = None) -> dict[str, Any]:
    ex = exchange
    with ex.lock:
        return {
            "version": VERSION,
            "saved_at_ms": ex.now_ms(),
            "fees_collected": str(ex.fees_collected),
            "settlement_rounding": str(ex.settlement_rounding),
            "trading_active": ex.trading_active,
            "ids": {kind: [prefix, _counter_next(counter)] for kind, (prefix, counter) in ex._ids.items()},
            "seq": _counter_next(ex._seq),
            "series": [{
                "ticker": s.ticker, "title": s.title, "category": s.category, "frequency": s.frequency,
                "tags": s.tags, "fee_type": s.fee_type, "taker_rate": str(s.fees.taker_rate),
                "maker_rate": str(s.fees.maker_rate), "multiplier": str(s.fees.multiplier),
                "settlement_sources": s.settlement_sources, "contract_url": s.contract_url,
                "contract_terms_url": s.contract_terms_url, "created_ms": s.created_ms, "updated_ms": s.updated_ms,
            } for s in ex.series.values()],
            "events": [{
                "event_ticker": e.event_ticker, "series_ticker": e.series_ticker, "title": e.title,
                "sub_title": e.sub_title, "category": e.category, "mutually_exclusive": e.mutually_exclusive,
                "strike_date_ms": e.strike_date_ms, "updated_ms": e.updated_ms, "markets": e.markets,
            } for e in ex.events.values()],
            "markets": [_market(m) for m in ex.markets.values()],
            "orders": [_order(o) for o in ex.orders.values()],
            "trades": [[str(v) if isinstance(v, Decimal) else v for v in rec] for rec in ex.trades],
            "accounts": [_account(a) for a in ex.accounts.values()],
            "keys": [] if keys is None else [{
                "key_id": k.key_id, "user_id": k.user_id,
                "public_key_pem": k.public_key.public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
            } for k in keys.keys()],
        }


def _market(m: Market) -> dict[str, Any]:
    return {
        "ticker": m.ticker, "event_ticker": m.event_ticker, "series_ticker": m.series_ticker, "title": m.title,
        "subtitle": m.subtitle, "yes_sub_title": m.yes_sub_title, "no_sub_title": m.no_sub_title,
        "market_type": m.market_type, "status": m.status, "created_ms": m.created_ms, "updated_ms": m.updated_ms,
        "open_ms": m.open_ms, "close_ms": m.close_ms, "expiration_ms": m.expiration_ms,
        "expected_expiration_ms": m.expected_expiration_ms,
        "settlement_timer_s": m.settlement_timer_s, "can_close_early": m.can_close_early,
        "rules_primary": m.rules_primary, "rules_secondary": m.rules_secondary, "result": m.result,
        "settlement_value": None if m.settlement_value is None else str(m.settlement_value),
        "determined_ms": m.determined_ms, "settled_ms": m.settled_ms, "last_tick": m.last_tick,
        "volume": m.volume, "open_interest": m.open_interest,
        # resting orders in queue order, per side and price level
        "book": [[[o.order_id for o in level if o.remaining and o.status == RESTING] for level in side.levels]
                 for side in m.book],
        "candles": [[c.minute, c.bid, c.ask, c.price, c.price_sum, c.volume, c.oi] for c in m.candles.values()],
    }


def _order(o: Order) -> dict[str, Any]:
    out: dict[str, Any] = {name: getattr(o, name) for name in Order.__slots__}
    for name in _DECIMAL_ORDER_FIELDS:
        out[name] = str(out[name])
    return out


def _account(a: Account) -> dict[str, Any]:
    return {
        "user_id": a.user_id, "balance": str(a.balance), "deposits": str(a.deposits), "updated_ms": a.updated_ms,
        "positions": [{
            "ticker": p.ticker, "event_ticker": p.event_ticker, "held": p.held, "reserved": p.reserved,
            "cost": [str(c) for c in p.cost], "realized_pnl": str(p.realized_pnl), "fees_paid": str(p.fees_paid),
            "total_traded": str(p.total_traded), "resting_orders": p.resting_orders, "updated_ms": p.updated_ms,
            "settled": p.settled,
        } for p in a.positions.values()],
        "orders": list(a.orders),
        "settlements": [{
            "seq": s.seq, "ticker": s.ticker, "event_ticker": s.event_ticker, "market_result": s.market_result,
            "yes_count": s.yes_count, "no_count": s.no_count, "yes_total_cost": str(s.yes_total_cost),
            "no_total_cost": str(s.no_total_cost), "revenue": str(s.revenue), "value": str(s.value),
            "fee_cost": str(s.fee_cost), "settled_ms": s.settled_ms,
        } for s in a.settlements],
    }


def load(data: dict[str, Any], clock: Clock | None = None, keys: KeyRegistry | None = None) -> Exchange:
    """An exchange rebuilt from `dump()` output (keys are registered into `keys` when given)."""
    if data.get("version") != VERSION:
        raise SnapshotError(f"snapshot version {data.get('version')!r} is not supported (expected {VERSION})")
    ex = Exchange(clock)
    ex.fees_collected = Decimal(data["fees_collected"])
    ex.settlement_rounding = Decimal(data["settlement_rounding"])
    ex.trading_active = bool(data["trading_active"])
    ex._ids = {kind: (prefix, itertools.count(n)) for kind, (prefix, n) in data["ids"].items()}
    ex._seq = itertools.count(data["seq"])
    for s in data["series"]:
        fees = FeeSchedule(taker_rate=Decimal(s["taker_rate"]), maker_rate=Decimal(s["maker_rate"]),
                           multiplier=Decimal(s["multiplier"]))
        ex.series[s["ticker"]] = Series(s["ticker"], s["title"], s["category"], s["frequency"], s["tags"],
                                        s["fee_type"], fees, s["settlement_sources"], s["contract_url"],
                                        s["contract_terms_url"], s["created_ms"], s["updated_ms"])
    for e in data["events"]:
        ex.events[e["event_ticker"]] = Event(e["event_ticker"], e["series_ticker"], e["title"], e["sub_title"],
                                             e["category"], e["mutually_exclusive"], e["strike_date_ms"],
                                             e["updated_ms"], list(e["markets"]))
    for d in data["orders"]:
        o = Order.__new__(Order)
        if "fee_basis" not in d:  # a snapshot from before fee accumulation: its next fills pay their own ceil
            d["fee_basis"] = str(Decimal(d["taker_fees"]) + Decimal(d["maker_fees"]))
        for name in Order.__slots__:
            value = d[name]
            setattr(o, name, Decimal(value) if name in _DECIMAL_ORDER_FIELDS else value)
        ex.orders[o.order_id] = o
    for raw in data["trades"]:
        ex.trades.append(tuple(Decimal(v) if i in (R_T_FEE, R_M_FEE) else v for i, v in enumerate(raw)))
    for d in data["markets"]:
        fees = ex.series[d["series_ticker"]].fees
        m = Market(ticker=d["ticker"], event_ticker=d["event_ticker"], series_ticker=d["series_ticker"],
                   title=d["title"], subtitle=d["subtitle"], yes_sub_title=d["yes_sub_title"],
                   no_sub_title=d["no_sub_title"], market_type=d["market_type"], status=d["status"],
                   created_ms=d["created_ms"], updated_ms=d["updated_ms"], open_ms=d["open_ms"],
                   close_ms=d["close_ms"], expiration_ms=d["expiration_ms"],
                   # a snapshot written before the field existed: the default of a new market, its close
                   expected_expiration_ms=d.get("expected_expiration_ms", min(d["close_ms"], d["expiration_ms"])),
                   settlement_timer_s=d["settlement_timer_s"], can_close_early=d["can_close_early"],
                   rules_primary=d["rules_primary"], rules_secondary=d["rules_secondary"], fees=fees,
                   fee_pc=tuple(fees.fee(1, PRICES[t]) for t in range(TICKS + 1)))
        m.unit_hold = tuple(PRICES[t] + m.fee_pc[t] for t in range(TICKS + 1))
        m.result = d["result"]
        m.settlement_value = None if d["settlement_value"] is None else Decimal(d["settlement_value"])
        m.determined_ms, m.settled_ms = d["determined_ms"], d["settled_ms"]
        m.last_tick, m.volume, m.open_interest = d["last_tick"], d["volume"], d["open_interest"]
        for side_index, side in enumerate(d["book"]):
            for ids in side:
                for oid in ids:
                    o = ex.orders[oid]
                    m.book[side_index].add(o)
                    m.resting[oid] = o
                    if o.expiration_ms is not None:
                        heapq.heappush(ex._expiries, (o.expiration_ms, oid))
        for minute, bid, ask, price, price_sum, volume, oi in d["candles"]:
            c = Candle(minute, 0, 0, oi)
            c.bid, c.ask, c.price, c.price_sum, c.volume = bid, ask, price, price_sum, volume
            m.candles[minute] = c
            m.current_candle = c
        ex.markets[m.ticker] = m
    for rec in ex.trades:
        ex.markets[rec[R_TICKER]].trades.append(rec)
    for d in data["accounts"]:
        acct = Account(user_id=d["user_id"], balance=Decimal(d["balance"]), deposits=Decimal(d["deposits"]),
                       updated_ms=d["updated_ms"])
        for p in d["positions"]:
            pos = Position(p["ticker"], p["event_ticker"], p["updated_ms"])
            pos.held, pos.reserved = list(p["held"]), list(p["reserved"])
            pos.cost = [Decimal(c) for c in p["cost"]]
            pos.realized_pnl, pos.fees_paid = Decimal(p["realized_pnl"]), Decimal(p["fees_paid"])
            pos.total_traded, pos.resting_orders, pos.settled = (Decimal(p["total_traded"]), p["resting_orders"],
                                                                 p["settled"])
            acct.positions[pos.ticker] = pos
            ex.markets[pos.ticker].positions[acct.user_id] = pos
        for oid in d["orders"]:
            o = ex.orders[oid]
            acct.orders[oid] = o
            if o.client_order_id:
                acct.by_client_id[o.client_order_id] = o
        acct.settlements = [Settlement(s["seq"], s["ticker"], s["event_ticker"], s["market_result"], s["yes_count"],
                                       s["no_count"], Decimal(s["yes_total_cost"]), Decimal(s["no_total_cost"]),
                                       Decimal(s["revenue"]), Decimal(s["value"]), Decimal(s["fee_cost"]),
                                       s["settled_ms"]) for s in d["settlements"]]
        ex.accounts[acct.user_id] = acct
    for rec in ex.trades:
        ex.accounts[rec[R_T_USER]].fills.append(rec)
        ex.accounts[rec[R_M_USER]].fills.append(rec)
    if keys is not None:
        for k in data.get("keys", []):
            keys.register(k["user_id"], k["public_key_pem"], k["key_id"])
    return ex


def save(exchange: Exchange, path: Path, keys: KeyRegistry | None = None) -> None:
    data = dump(exchange, keys)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, separators=(",", ":"))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def restore(path: Path, clock: Clock | None = None, keys: KeyRegistry | None = None) -> Exchange:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SnapshotError(f"cannot read exchange state {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"exchange state {path} is not valid JSON (line {exc.lineno}): {exc.msg}") from None
    try:
        return load(data, clock, keys)
    except (KeyError, TypeError, ValueError, IndexError, ArithmeticError) as exc:
        if isinstance(exc, SnapshotError):
            raise SnapshotError(f"{path}: {exc}") from None
        raise SnapshotError(f"exchange state {path} is damaged or incomplete ({type(exc).__name__}: {exc})") from None


class PeriodicSaver:
    """Saves the exchange every `interval_s` seconds of wall time when driven by the server's tick."""

    def __init__(self, exchange: Exchange, path: Path, keys: KeyRegistry | None, interval_s: float = 30.0) -> None:
        import time

        self._time = time.monotonic
        self.exchange = exchange
        self.path = path
        self.keys = keys
        self.interval_s = interval_s
        self._last = self._time()

    def step(self, now_ms: int) -> None:
        if self._time() - self._last >= self.interval_s:
            self._last = self._time()
            save(self.exchange, self.path, self.keys)
