"""Orders and fills of one YES market, built directly, for tests that drive the Portfolio's booking alone."""

from __future__ import annotations

from decimal import Decimal

from precog.domain.order import Action, Fill, Side
from precog.trading.orders import OrderRecord, OrderState


def order(ticker: str, oid: int, action: str, position_id: int | None, qty: int, *, mode: str,
          exit_condition: str = "stop_loss", exit_priority: str = "HIGH") -> OrderRecord:
    """A resting YES limit order at 0.50: an entry when buying, an exit (with its condition) when selling."""
    entry = action == "buy"
    return OrderRecord(id=oid, client_order_id=f"c{oid}", venue_order_id=f"v{oid}", run_id=None, platform_id="kalshi",
                       market_id=ticker, position_id=position_id, purpose="entry" if entry else "exit",
                       side="yes", action=action, order_type="limit", time_in_force="gtc", limit_price=Decimal("0.50"),
                       quantity=qty, filled_quantity=0, fees=Decimal("0"), status=OrderState.RESTING, mode=mode,
                       exit_condition=None if entry else exit_condition, exit_priority=None if entry else exit_priority)


def fill(ticker: str, fid: str, action: Action, count: int, price: str) -> Fill:
    """A taker fill of `count` YES contracts at `price` with a $0.10 fee."""
    p = Decimal(price)
    return Fill(fill_id=fid, trade_id=fid, order_id="v", ticker=ticker, side=Side.YES, action=action,
                count=Decimal(count), yes_price=p, no_price=Decimal(1) - p, is_taker=True, fee=Decimal("0.10"))
