"""time_based_urgent (spec 5.6: "< 5 min to settlement/close") measured to when the market is expected to settle.

On Kalshi a game market's `close_time` is the latest it may close (often weeks after the game); the venue's
`expected_expiration_time` says when it expects to settle it. The rig's local exchange lists such a market and
the real engine holds a position in it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine.conftest import SERIES

DAY_MS = 86_400_000
KC_EVENT = "KXNFLGAME-TEST-LVKC"
KC = f"{KC_EVENT}-KC"


def _list_kalshi_shaped_market(rig: Any, *, expected_in_s: int | None) -> None:
    """A game market closing in two weeks; expected to settle in `expected_in_s` (None: the venue gives no
    estimate of its own, the local exchange then reports the close)."""
    now = rig.clock.now_ms()
    rig.exchange.create_event(KC_EVENT, SERIES, "Las Vegas at Kansas City")
    rig.exchange.create_market(KC, KC_EVENT, title="Will Kansas City win?", close_ms=now + 14 * DAY_MS,
                               expiration_ms=now + 14 * DAY_MS + 3 * 3_600_000,
                               expected_expiration_ms=None if expected_in_s is None else now + expected_in_s * 1000)
    rig.ticker = KC


async def _enter(rig: Any) -> Any:
    rig.quote("0.49", "0.50")
    rig.probs.p[rig.ticker] = Decimal("0.62")
    engine = rig.make_engine()
    await engine.start()
    await rig.run_until(lambda: rig.open_positions())
    (pos,) = rig.open_positions()
    assert pos.market_id == KC
    return pos


def _first_exit(rig: Any, position_id: int) -> tuple[Any, ...] | None:
    rows = rig.rows("SELECT exit_condition, exit_priority, exit_metadata FROM position_exits WHERE position_id = %s "
                    "ORDER BY exit_id", position_id)
    return rows[0] if rows else None


async def test_a_game_market_is_exited_in_the_last_five_minutes_before_its_expected_settlement(make_rig: Any) -> None:
    rig = make_rig()
    _list_kalshi_shaped_market(rig, expected_in_s=2 * 3600)
    expected_ms = rig.exchange.market(KC).expected_expiration_ms
    pos = await _enter(rig)
    # two hours at one-minute steps: nothing else moves (steady quote, steady forecast)
    await rig.run_until(lambda: _first_exit(rig, pos.position_id) is not None, max_steps=150, seconds=60)
    condition, priority, _ = _first_exit(rig, pos.position_id)  # type: ignore[misc]
    assert (condition, priority) == ("time_based_urgent", "HIGH")
    left_ms = expected_ms - rig.clock.now_ms()
    assert 0 < left_ms <= 5 * 60 * 1000  # within five minutes of the expected settlement, not earlier, not after
    close_ms = rig.exchange.market(KC).close_ms
    assert close_ms - rig.clock.now_ms() > 13 * DAY_MS  # measured to the close it would never have fired


async def test_without_an_expected_settlement_the_close_still_governs(make_rig: Any) -> None:
    """Same market, no expected expiration of its own: a position held for three hours is not exited for time
    (the close is two weeks away), as before."""
    rig = make_rig()
    _list_kalshi_shaped_market(rig, expected_in_s=None)
    m = rig.exchange.market(KC)
    assert m.expected_expiration_ms == m.close_ms
    pos = await _enter(rig)
    for _ in range(180):
        await rig.step(60)
    assert _first_exit(rig, pos.position_id) is None and rig.open_positions()


async def test_a_position_entered_inside_the_last_five_minutes_is_held_to_settlement(make_rig: Any) -> None:
    """An entry made with less than five minutes to the expected settlement (settlement arbitrage buys with <= 120 s
    left) knew the time it had: it is not sold again for time at the next check."""
    rig = make_rig()
    _list_kalshi_shaped_market(rig, expected_in_s=200)
    pos = await _enter(rig)
    for _ in range(6):
        await rig.step(20)
    assert _first_exit(rig, pos.position_id) is None and rig.open_positions()
