"""live_trading's fourth_down_conversion / fourth_down_fail: derived by load_games from the game_states history
(the version before a play's first version carries the down and possession the play was run with), written
through the store `precog ingest` uses, decided by LiveTrading."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from trading_dbkit import World
from trading_testkit import game, market, strategy

from precog.feeds.game_state import GameState
from precog.ingest.game_store import GameStateStore
from precog.trading.snapshot import load_games
from precog.trading.strategies import FOURTH_DOWN, LAST_PLAY_SEEN
from precog.trading.views import GameView

EVENT = "KXNFLGAME-25DEC28KCBUF"  # linked to nfl game 401 by the seeded world
OTHER_EVENT = "KXNFLGAME-25DEC28NYJMIA"  # a second game (402) loaded in the same scan
TRIGGERS = ("touchdown", "fourth_down_conversion", "fourth_down_fail")
_play_ids = count(4017729313000)


def _play(text: str, trigger: str | None = None) -> dict[str, str]:
    meta = {"last_play_id": str(next(_play_ids)), "last_play_text": text}
    return {**meta, "last_play_type": trigger} if trigger else meta


def _state(play: dict[str, str], *, down: int | None, possession: str | None, home: int = 14, away: int = 10,
           clock: int = 300, game_id: str = "401") -> GameState:
    base = game("live", period=4, clock=clock, home=home, away=away, possession=possession).state
    return replace(base, game_id=game_id, down=down, distance=None if down is None else 10, metadata=dict(play))


class Game:
    """One game's ESPN polls, each stored 5 s after the previous through GameStateStore (a version on change)."""

    def __init__(self, world: World, game_id: str = "401") -> None:
        self.store = GameStateStore(world.conn)
        self.world = world
        self.game_id = game_id
        self.t = datetime.now(UTC) + timedelta(minutes=1)  # after the seeded (scheduled) version

    def poll(self, play: dict[str, str], **situation: Any) -> float:
        self.t += timedelta(seconds=5)
        self.store.write([_state(play, game_id=self.game_id, **situation)], self.t)
        return self.t.timestamp()

    def view(self) -> GameView:
        return load_games(self.world.conn, {EVENT: ("nfl", self.game_id)})[EVENT]


def _fired(view: GameView, now: float) -> set[str]:
    """The triggers (each configured alone) for which live_trading lets the game through at `now`."""
    return {t for t in TRIGGERS if strategy("live_trading", trigger_events=[t]).phase_block(market(), view, now)
            is None}


def _fourth_down(g: Game, down: int = 4) -> None:
    """A third-down run leaves the home team facing `down` (ESPN's situation is the next snap's)."""
    g.poll(_play("Rush"), down=down, possession="home")


def test_a_converted_fourth_down(world: World) -> None:
    g = Game(world)
    _fourth_down(g)
    seen = g.poll(_play("Rush"), down=1, possession="home")  # 4th & 10 run -> 1st & 10, still home's ball
    view = g.view()
    assert view.state.metadata[FOURTH_DOWN] == "fourth_down_conversion"
    assert _fired(view, seen + 1) == {"fourth_down_conversion"}


def test_a_failed_fourth_down(world: World) -> None:
    g = Game(world)
    _fourth_down(g)
    seen = g.poll(_play("Pass Incompletion"), down=1, possession="away")  # turnover on downs
    assert _fired(g.view(), seen + 1) == {"fourth_down_fail"}


def test_a_punt_on_fourth_down_is_no_attempt(world: World) -> None:
    g = Game(world)
    _fourth_down(g)
    seen = g.poll(_play("Punt"), down=1, possession="away")
    view = g.view()
    assert FOURTH_DOWN not in view.state.metadata
    assert _fired(view, seen + 1) == set()
    assert strategy("live_trading").phase_block(market(), view, seen + 1) == "no_trigger_event"


def test_a_fourth_down_touchdown_is_both_triggers(world: World) -> None:
    g = Game(world)
    _fourth_down(g)
    seen = g.poll(_play("Passing Touchdown", "touchdown"), down=None, possession="home", home=20)
    assert _fired(g.view(), seen + 1) == {"touchdown", "fourth_down_conversion"}


def test_a_third_down_run_is_no_fourth_down(world: World) -> None:
    g = Game(world)
    _fourth_down(g, down=3)
    seen = g.poll(_play("Rush"), down=1, possession="home")
    view = g.view()
    assert FOURTH_DOWN not in view.state.metadata and _fired(view, seen + 1) == set()


def test_no_earlier_version_or_an_unknown_down_sets_nothing(world: World) -> None:
    g = Game(world, game_id="402")  # no version of 402 before this one
    seen = g.poll(_play("Rush"), down=1, possession="home")
    view = g.view()
    assert view.state.metadata[LAST_PLAY_SEEN] == seen  # the play is known, its down is not
    assert FOURTH_DOWN not in view.state.metadata and _fired(view, seen + 1) == set()

    g = Game(world)
    g.poll(_play("Rush"), down=None, possession="home")  # ESPN's -1 between plays: no down
    seen = g.poll(_play("Rush"), down=1, possession="home")
    view = g.view()
    assert FOURTH_DOWN not in view.state.metadata and _fired(view, seen + 1) == set()


def test_the_trigger_expires_from_when_the_play_was_first_stored(world: World) -> None:
    g = Game(world)
    _fourth_down(g)
    first = g.poll(_play_conversion := _play("Rush"), down=1, possession="home")
    g.poll(_play_conversion, down=1, possession="home", clock=296)  # same play, clock moved: a new version
    view = g.view()
    assert view.state.metadata[LAST_PLAY_SEEN] == first
    assert view.state.metadata[FOURTH_DOWN] == "fourth_down_conversion"  # still judged against the 4th-down one
    assert _fired(view, first + 10) == {"fourth_down_conversion"}
    live = strategy("live_trading", trigger_events=["fourth_down_conversion"])
    assert live.phase_block(market(), view, first + 11) == "event_too_old"

    seen = g.poll(_play("Rush"), down=2, possession="home")  # the next play: no fourth down any more
    assert FOURTH_DOWN not in g.view().state.metadata
    assert live.phase_block(market(), g.view(), seen + 1) == "no_trigger_event"


def test_every_game_of_a_scan_gets_its_own_outcome(world: World) -> None:
    """One load_games call (one query for all games) decides each game from its own history."""
    store = GameStateStore(world.conn)
    t = datetime.now(UTC) + timedelta(minutes=1)
    store.write([_state(_play("Rush"), down=4, possession="home"),
                 _state(_play("Rush"), down=3, possession="away", game_id="402")], t)
    store.write([_state(_play("Sack"), down=1, possession="away"),
                 _state(_play("Rush"), down=4, possession="away", game_id="402")], t + timedelta(seconds=5))
    views = load_games(world.conn, {EVENT: ("nfl", "401"), OTHER_EVENT: ("nfl", "402")})
    assert views[EVENT].state.metadata[FOURTH_DOWN] == "fourth_down_fail"
    assert FOURTH_DOWN not in views[OTHER_EVENT].state.metadata  # its play was a third down
