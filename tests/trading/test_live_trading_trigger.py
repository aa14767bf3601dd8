"""live_trading triggers on ESPN's last play, within 10 s of when that play was first observed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from trading_dbkit import World
from trading_testkit import NOW, engine, game, market, strategy

from precog.feeds.game_state import GameState
from precog.ingest.game_store import GameStateStore
from precog.trading.snapshot import load_games
from precog.trading.strategies import LAST_PLAY_SEEN
from precog.trading.views import GameView

D = Decimal
EVENT = "KXNFLGAME-25DEC28KCBUF"
TOUCHDOWN = {"last_play_id": "4017729313600", "last_play_text": "Passing Touchdown", "last_play_type": "touchdown"}


def _live_edge(view: GameView) -> Any:
    """The YES edge of the live_trading unit on a market priced for an edge above its 0.10 minimum."""
    m = market(bid="0.82", ask="0.83", yes_team="home", volume=5000)
    result = engine({m.ticker: "0.999"}, strategies=(strategy("live_trading", strategy_id=2),)).scan(
        [m], {EVENT: view}, positions=[], balance=D("10000"), now=NOW)
    return next(e for e in result.edges if e.side == "yes")


def _live(seen_ago: float | None, meta: dict[str, Any] = TOUCHDOWN) -> GameView:
    """A live game polled 1 s ago whose last play was first observed `seen_ago` s ago."""
    metadata = dict(meta) if seen_ago is None else {**meta, LAST_PLAY_SEEN: NOW - seen_ago}
    return game("live", period=4, clock=300, home=21, away=17, observed_ago=1, metadata=metadata)


def test_a_touchdown_seen_3_s_ago_is_traded() -> None:
    edge = _live_edge(_live(3))
    assert edge.reason is None and edge.signal
    assert edge.edge >= D("0.10")


def test_a_touchdown_seen_11_s_ago_is_too_old_though_the_latest_poll_is_fresh() -> None:
    edge = _live_edge(_live(11))  # the poll 1 s ago saw the same play again: that does not renew the event
    assert edge.reason == "event_too_old" and not edge.signal


def test_a_play_that_is_no_trigger_is_not_traded() -> None:
    punt = {"last_play_id": "4017729313601", "last_play_text": "Punt"}  # no last_play_type: not a trigger
    edge = _live_edge(_live(3, punt))
    assert edge.reason == "no_trigger_event" and not edge.signal


def _state(clock: int, meta: dict[str, Any]) -> GameState:
    return replace(game("live", period=4, clock=clock, home=21, away=17).state, metadata=dict(meta))


def test_the_10_s_run_from_the_first_stored_version_with_the_play(world: World) -> None:
    """game_states gets a new version on any change (the clock here), so neither the current version's
    created_at nor the latest poll dates the play: load_games dates it by its first version."""
    store = GameStateStore(world.conn)
    t0 = datetime.now(UTC) + timedelta(minutes=1)  # after the seeded (scheduled) version
    links = {EVENT: ("nfl", "401")}
    store.write([_state(300, TOUCHDOWN)], t0)
    store.write([_state(296, TOUCHDOWN)], t0 + timedelta(seconds=4))  # same play, clock moved: a new version
    view = load_games(world.conn, links)[EVENT]
    versions = world.conn.execute("SELECT count(*) FROM game_states WHERE external_game_id = '401'"
                                  " AND sport_metadata->>'last_play_id' = %s", (TOUCHDOWN["last_play_id"],))
    assert versions.fetchone()[0] == 2
    assert view.observed_ts == (t0 + timedelta(seconds=4)).timestamp()  # the current version
    assert view.state.metadata[LAST_PLAY_SEEN] == t0.timestamp()  # the play's first version
    live = strategy("live_trading")
    assert live.phase_block(market(), view, t0.timestamp() + 10) is None
    assert live.phase_block(market(), view, t0.timestamp() + 11) == "event_too_old"  # observed_ts only 7 s old

    field_goal = {"last_play_id": "4017729313700", "last_play_text": "Field Goal Good", "last_play_type": "field_goal"}
    store.write([_state(250, field_goal)], t0 + timedelta(seconds=20))  # a new play: a new event
    view = load_games(world.conn, links)[EVENT]
    assert view.state.metadata[LAST_PLAY_SEEN] == (t0 + timedelta(seconds=20)).timestamp()
    assert view.state.metadata["last_play_type"] == "field_goal"
    assert live.phase_block(market(), view, t0.timestamp() + 23) is None
