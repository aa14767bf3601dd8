"""Entry to exit on the local exchange, once per exit condition (spec §5.6), with attribution and attempts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine.conftest import TICKER2, rig_config


async def _enter(rig: Any, p: str = "0.62", bid: str = "0.49", ask: str = "0.50") -> Any:
    rig.quote(bid, ask)
    rig.probs.p[rig.ticker] = Decimal(p)
    engine = rig.engine or rig.make_engine()
    await engine.start()
    await rig.run_until(lambda: rig.open_positions())
    # entry done: the order filled completely (the book had 2000 at the ask)
    pos = rig.open_positions()[0]
    assert pos.side == "yes" and pos.entry_price == Decimal("0.50")
    assert pos.method_id is not None and pos.strategy_id is not None and pos.model_id is not None
    return pos


def _exits(rig: Any, position_id: int) -> list[tuple[Any, ...]]:
    return rig.rows("SELECT exit_condition, exit_priority, quantity_exited, exit_price, realized_pnl, exit_metadata "
                    "FROM position_exits WHERE position_id = %s ORDER BY exit_id", position_id)


def _closed(rig: Any, position_id: int) -> dict[str, Any]:
    pos = rig.engine.portfolio.get(position_id)
    assert pos is not None
    return {"status": pos.status, "quantity": pos.quantity, "reason": pos.exit_reason,
            "priority": pos.exit_priority, "realized": pos.realized_pnl}


def _check_ledger(rig: Any) -> None:
    """Our cash and contracts equal the exchange's, to the cent."""
    ours = Decimal("10000") + rig.engine.our_cash_delta()
    held = sum((o.limit_price * o.remaining for o in rig.engine.executor.open.values() if o.action == "buy"),
               Decimal(0))
    venue = rig.exchange.account("us")
    holds = sum((o.hold for o in venue.orders.values() if o.status == "resting"), Decimal(0))
    assert held == 0 or holds > 0
    assert ours == venue.balance + holds
    for ticker in rig.exchange.markets:
        ours_net = sum(p.quantity if p.side == "yes" else -p.quantity for p in rig.open_positions()
                       if p.market_id == ticker)
        assert ours_net == rig.venue_position(ticker)


async def test_stop_loss_is_a_critical_market_exit(make_rig: Any) -> None:
    rig = make_rig()
    pos = await _enter(rig)
    rig.quote("0.40", "0.42")  # -20% at the bid, past the -12% medium-confidence stop
    await rig.run_until(lambda: not rig.open_positions())
    exits = _exits(rig, pos.position_id)
    assert {e[0] for e in exits} == {"stop_loss"} and exits[0][1] == "CRITICAL"
    assert sum(e[2] for e in exits) == pos.initial_quantity
    assert all(e[3] == Decimal("0.40") for e in exits)
    c = _closed(rig, pos.position_id)
    assert c["status"] == "closed" and c["reason"] == "stop_loss"
    # the attempt is recorded: a market-style (IoC) order that filled completely
    att = rig.rows("SELECT order_type, success, attempt_number, priority_level FROM exit_attempts "
                   "WHERE position_id = %s", pos.position_id)
    assert att == [("market", True, 1, "CRITICAL")]
    # trades carry the attribution
    ids = rig.rows("SELECT DISTINCT method_id, strategy_id, model_id FROM trades WHERE position_id = %s",
                   pos.position_id)
    assert ids == [(pos.method_id, pos.strategy_id, pos.model_id)]
    _check_ledger(rig)


async def test_an_exit_waits_for_a_bid_instead_of_sending_into_an_empty_book(make_rig: Any) -> None:
    rig = make_rig()
    pos = await _enter(rig)
    exit_orders = "SELECT count(*), coalesce(sum(filled_quantity), 0) FROM orders WHERE purpose = 'exit'"
    rig.quote("0.40", "0.42", size=10)  # a stop loss, and only 10 contracts bid
    await rig.step(1)
    assert rig.rows(exit_orders)[0] == (1, 10)
    for _ in range(3):  # nobody bids now: no order for the CRITICAL attempt timeout (5 s)
        await rig.step(1)
    assert rig.rows(exit_orders)[0] == (1, 10) and rig.open_positions()
    await rig.step(2.5)  # the timeout passed: one more try, in case the snapshot was behind
    assert rig.rows(exit_orders)[0] == (2, 10)
    rig.quote("0.39", "0.42")  # a bid shows: the exit goes at once
    await rig.step(1)
    await rig.step(1)
    assert not rig.open_positions()
    count, filled = rig.rows(exit_orders)[0]
    assert count == 3 and filled == pos.initial_quantity
    _check_ledger(rig)


async def test_circuit_breaker_closes_every_position_and_halts(make_rig: Any) -> None:
    rig = make_rig(rig_config(**{"trading.account.daily_loss_limit_dollars": Decimal("20")}),
                   second_market=True)
    rig.quote("0.49", "0.50", ticker=TICKER2)
    rig.probs.p[TICKER2] = Decimal("0.62")
    pos = await _enter(rig)
    await rig.run_until(lambda: len(rig.open_positions()) == 2)
    rig.quote("0.47", "0.48")  # a loss of ~$20 on the first position; no stop loss yet (-6%)
    await rig.run_until(lambda: not rig.open_positions(), max_steps=20)
    assert rig.engine.trading_state == "HALTED"
    assert rig.engine.stats.breakers == ["daily_loss_limit"]
    conditions = rig.rows("SELECT DISTINCT exit_condition, exit_priority FROM position_exits")
    assert conditions == [("circuit_breaker", "CRITICAL")]
    assert rig.rows("SELECT breaker_type, action FROM circuit_breaker_events") == [
        ("daily_loss_limit", "close_all_positions")]
    assert rig.rows("SELECT severity FROM alerts WHERE alert_type = 'circuit_breaker'") == [("critical",)]
    # halted: a fresh edge does not open anything
    rig.quote("0.49", "0.50")
    for _ in range(6):
        await rig.step()
    assert not rig.open_positions()
    assert rig.engine.portfolio.get(pos.position_id).exit_reason == "circuit_breaker"  # type: ignore[union-attr]
    _check_ledger(rig)


async def test_trailing_stop_path_and_partial_exits(make_rig: Any) -> None:
    """100% -> first_target 50% -> second_target 25% -> the last 25% rides the trailing stop out."""
    rig = make_rig()
    pos = await _enter(rig, p="0.80")  # high edge: market-style IoC entry
    qty = pos.quantity
    rig.probs.p[rig.ticker] = Decimal("0.95")  # keep the recomputed edge healthy as the price rises
    rig.quote("0.58", "0.59")  # +16%: first stage; the trailing stop activates (>= +10%)
    await rig.run_until(lambda: "first_target" in rig.engine.portfolio.get(pos.position_id).executed_stages)
    st = rig.engine.portfolio.get(pos.position_id).trailing_stop_state
    assert st["active"] is True and Decimal(st["current_stop_price"]) < Decimal("0.58")
    rig.quote("0.63", "0.64")  # +26%: second stage; the stop tightens to the 2% floor
    await rig.run_until(lambda: "second_target" in rig.engine.portfolio.get(pos.position_id).executed_stages)
    p = rig.engine.portfolio.get(pos.position_id)
    assert p.quantity == qty - qty * 50 // 100 - qty * 25 // 100
    st = p.trailing_stop_state
    assert Decimal(st["current_distance"]) == Decimal("0.02")
    stop = Decimal(st["current_stop_price"])
    assert stop == (Decimal("0.63") * Decimal("0.98")).quantize(Decimal("0.0001"))
    # the stop never moves down: a lower price leaves it where it is
    rig.quote("0.62", "0.63")
    await rig.step(30)
    assert Decimal(rig.engine.portfolio.get(pos.position_id).trailing_stop_state["current_stop_price"]) == stop
    rig.quote("0.61", "0.62")  # below the stop (0.6174): HIGH trailing_stop exit of the rest
    await rig.run_until(lambda: not rig.open_positions())
    exits = _exits(rig, pos.position_id)
    by_cond: dict[str, int] = {}
    for e in exits:
        by_cond[e[0]] = by_cond.get(e[0], 0) + e[2]
    assert by_cond == {"partial_exit_target": qty * 50 // 100 + qty * 25 // 100,
                       "trailing_stop": qty - qty * 50 // 100 - qty * 25 // 100}
    stages = rig.rows("SELECT DISTINCT partial_stage FROM position_exits WHERE position_id = %s "
                      "AND partial_stage IS NOT NULL ORDER BY 1", pos.position_id)
    assert stages == [("first_target",), ("second_target",)]
    c = _closed(rig, pos.position_id)
    assert c["status"] == "closed" and c["realized"] > 0
    # every version of the position is stored (SCD2): entry, marks, stage 1, stage 2, close
    versions = rig.rows("SELECT count(*) FROM positions WHERE position_id = %s", pos.position_id)[0][0]
    assert versions >= 4
    _check_ledger(rig)


async def test_time_based_urgent_exit_before_close(make_rig: Any) -> None:
    rig = make_rig(close_in_s=15 * 60)
    pos = await _enter(rig)
    # (a position entered again inside the last five minutes is held to settlement: the run ends at this exit)
    await rig.run_until(lambda: _exits(rig, pos.position_id), max_steps=200, seconds=10)
    exits = _exits(rig, pos.position_id)
    assert exits[0][0] == "time_based_urgent" and exits[0][1] == "HIGH"
    # it fired in the last five minutes before the close, not earlier
    close = rig.exchange.market(rig.ticker).close_ms
    assert close - rig.clock.now_ms() <= 5 * 60 * 1000
    _check_ledger(rig)


async def test_liquidity_dried_up_exit(make_rig: Any) -> None:
    rig = make_rig()
    pos = await _enter(rig)
    rig.quote("0.46", "0.53")  # spread 0.07 > 0.03
    await rig.run_until(lambda: not rig.open_positions())
    exits = _exits(rig, pos.position_id)
    assert exits[0][:2] == ("liquidity_dried_up", "HIGH")
    att = rig.rows("SELECT order_type, limit_price, timeout_seconds FROM exit_attempts WHERE position_id = %s "
                   "ORDER BY attempt_id", pos.position_id)
    # aggressive start = max(bid - 0.01, bid x 0.98), and liquidity exits wait 15 s
    assert att[0] == ("limit", Decimal("0.45"), Decimal("15.000"))
    _check_ledger(rig)


async def test_profit_target_without_partial_exits_records_conflicts(make_rig: Any) -> None:
    rig = make_rig(rig_config(**{"position_management.partial_exits.enabled": False}))
    pos = await _enter(rig, p="0.80")
    rig.probs.p[rig.ticker] = Decimal("0.64")  # at 0.61 the edge (0.626 - 0.61) is below early_exit: a conflict
    rig.quote("0.61", "0.62")  # +22% >= the 20% medium target
    await rig.run_until(lambda: not rig.open_positions())
    exits = _exits(rig, pos.position_id)
    assert exits[0][:2] == ("profit_target", "MEDIUM")
    conflicts = {c["condition"] for c in exits[0][5]["conflicting_triggers"]}
    assert "early_exit" in conflicts
    # MEDIUM starts at the fair price (mid) and walks down by $0.01 x (1 + 0.5 n) every 30 s
    att = rig.rows("SELECT limit_price, success FROM exit_attempts WHERE position_id = %s ORDER BY attempt_id",
                   pos.position_id)
    assert att[0] == (Decimal("0.62"), False)  # rounds (0.61 + 0.62)/2 half-up; rests above the bid
    assert att[-1][1] is True and att[-1][0] <= Decimal("0.61")
    _check_ledger(rig)


async def test_early_exit_when_edge_thins(make_rig: Any) -> None:
    rig = make_rig()
    pos = await _enter(rig)
    rig.probs.p[rig.ticker] = Decimal("0.50")  # edge at the bid 0.49: 0.5 - 0.49 = 0.01 < 0.02
    await rig.run_until(lambda: not rig.open_positions(), max_steps=100)
    exits = _exits(rig, pos.position_id)
    assert exits[0][:2] == ("early_exit", "LOW")
    att = rig.rows("SELECT limit_price FROM exit_attempts WHERE position_id = %s ORDER BY attempt_id",
                   pos.position_id)
    assert att[0][0] == Decimal("0.50")  # LOW starts conservative: at the ask
    _check_ledger(rig)


async def test_edge_disappeared_exit(make_rig: Any) -> None:
    rig = make_rig()
    pos = await _enter(rig)
    rig.probs.p[rig.ticker] = Decimal("0.40")  # the model now says the position is worth less than the bid
    await rig.run_until(lambda: not rig.open_positions(), max_steps=100)
    exits = _exits(rig, pos.position_id)
    assert exits[0][:2] == ("edge_disappeared", "LOW")
    _check_ledger(rig)


async def test_rebalance_out_of_a_weaker_winner(make_rig: Any) -> None:
    rig = make_rig(rig_config(**{"position_management.portfolio.max_open_positions": 1}), second_market=True)
    pos = await _enter(rig)
    rig.quote("0.53", "0.54")  # +6%: a profitable position with a thin remaining edge (0.608 - 0.53)
    await rig.step(30)
    rig.quote("0.39", "0.40", ticker=TICKER2)
    rig.probs.p[TICKER2] = Decimal("0.62")  # a far better opportunity, blocked by max_open_positions
    await rig.run_until(lambda: rig.engine.portfolio.get(pos.position_id).status != "open", max_steps=100)
    exits = _exits(rig, pos.position_id)
    assert exits[0][:2] == ("rebalance", "LOW")
    # and the freed slot goes to the better market
    await rig.run_until(lambda: any(p.market_id == TICKER2 for p in rig.open_positions()), max_steps=20)
    _check_ledger(rig)
