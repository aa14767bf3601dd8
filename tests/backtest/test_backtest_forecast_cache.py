"""A model that declares `reads_clock = False` is asked again only when its game or its own state changed.

The engine re-decides every market every decision interval; in a replay most of those asks repeat the last
one. The world reuses the estimate until the game moves (a quote, a state, a result) or the model says its
state changed (`observe` not returning False). Models without the declaration are asked every time.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from backtest.bt_testkit import MeanReversionModel, method_row
from backtest.test_backtest_fast_path import _both, _breakers_reset_in_5_minutes, _recording
from precog.backtest.feed import FINAL, LIST, QUOTE, Event, GuardedArchive
from precog.backtest.models import GameInfo
from precog.backtest.runner import BacktestOptions
from precog.backtest.world import BacktestWorld, MakerConfig
from precog.db.connection import connect
from precog.engine.core import Estimate
from precog.venues.exchange.clock import SimClock
from precog.venues.exchange.engine import Exchange

T0 = 1_760_000_000_000


class CountingModel:
    """P(home) = the fair value plus a learned offset; counts how often it is asked."""

    def __init__(self, key: str, reads_clock: bool | None, learns_from_finals: bool = False) -> None:
        self.key = key
        if reads_clock is not None:
            self.reads_clock = reads_clock
        self.learns_from_finals = learns_from_finals
        self.offset = Decimal(0)
        self.asked = 0

    def train(self, archive: GuardedArchive, start_ms: int, end_ms: int) -> int:
        return 0

    def observe(self, event: Event, game: GameInfo) -> bool:
        if self.learns_from_finals and event.kind == FINAL:
            self.offset += Decimal("0.01")
            return True
        return False

    def estimate(self, game: GameInfo, now_ms: int) -> Estimate | None:
        self.asked += 1
        return None if game.final else Estimate(game.fair + self.offset, "medium")


def _listing(ticker: str, fair: str) -> dict[str, Any]:
    return {"home": "PHI", "away": "DAL", "kickoff_ms": T0 + 3_600_000, "close_ms": T0 + 7_200_000,
            "fair": Decimal(fair), "yes_is_home": True}


def test_an_estimate_is_reused_until_its_game_or_its_model_changes() -> None:
    clock = SimClock(T0)
    cached = CountingModel("cached", reads_clock=False)
    asked = CountingModel("asked", reads_clock=None)  # no declaration: asked every time
    learns = CountingModel("learns", reads_clock=False, learns_from_finals=True)
    world = BacktestWorld(Exchange(clock), clock.now_ms, {m.key: m for m in (cached, asked, learns)}, MakerConfig())
    seq = iter(range(1, 100))
    a, b = "KXNFLGAME-25OCT05DALPHI-PHI", "KXNFLGAME-25OCT05NYGWAS-WAS"
    world.apply([Event(T0, next(seq), LIST, a, _listing(a, "0.60")), Event(T0, next(seq), LIST, b, _listing(b, "0.40"))])
    now = None  # the world reads its own clock

    first = world.estimate("cached", a, now)  # type: ignore[arg-type]
    assert first is not None and first.p_yes == Decimal("0.60")
    for _ in range(3):
        clock.advance(15_000)
        assert world.estimate("cached", a, now) is first  # type: ignore[arg-type]
        world.estimate("asked", a, now)  # type: ignore[arg-type]
    assert cached.asked == 1 and asked.asked == 3

    # a quote on another market changes neither this game nor the model
    world.apply([Event(clock.now_ms(), next(seq), QUOTE, b, {"fair": Decimal("0.45")})])
    assert world.estimate("cached", a, now) is first and cached.asked == 1  # type: ignore[arg-type]
    assert world.estimate("cached", b, now).p_yes == Decimal("0.45")  # type: ignore[arg-type, union-attr]

    # a quote on this market moves its game: asked again, and the new forecast is the one used
    world.apply([Event(clock.now_ms(), next(seq), QUOTE, a, {"fair": Decimal("0.62")})])
    moved = world.estimate("cached", a, now)  # type: ignore[arg-type]
    assert moved is not None and moved.p_yes == Decimal("0.62") and cached.asked == 3

    # a result elsewhere teaches the learning model (its estimate of this market changes); not the others
    learns_before = world.estimate("learns", a, now)  # type: ignore[arg-type]
    assert learns_before is not None and learns_before.p_yes == Decimal("0.62")
    world.apply([Event(clock.now_ms(), next(seq), FINAL, b, {"settlement_value": "1"})])
    learned = world.estimate("learns", a, now)  # type: ignore[arg-type]
    assert learned is not None and learned.p_yes == Decimal("0.63")
    assert world.estimate("cached", a, now) is moved and cached.asked == 3  # type: ignore[arg-type]
    # a finished game is asked again (its phase moved) and has nothing more to say
    assert world.estimate("cached", b, now) is None  # type: ignore[arg-type]


class _AskedEveryTime(MeanReversionModel):
    reads_clock = True

    def observe(self, event: Event, game: GameInfo) -> bool:
        return True


class _Reused(MeanReversionModel):
    reads_clock = False

    def __init__(self) -> None:
        self.asked = 0

    def observe(self, event: Event, game: GameInfo) -> bool:
        return False

    def estimate(self, game: GameInfo, now_ms: int) -> Estimate | None:
        self.asked += 1
        return super().estimate(game, now_ms)


async def test_reusing_forecasts_changes_no_decision(make_database: Any, tmp_path: Path) -> None:
    # the halting scenario of the fast-path tests: the same model asked every time, then reused; both runs
    # must send the same orders, book the same trades and refuse the same entries for the same reasons
    _recording(tmp_path / "rec", quotes=4000, markets=30, seed=11)
    config = _breakers_reset_in_5_minutes(tmp_path)
    models = iter([_AskedEveryTime(), _Reused()])
    reused: list[_Reused] = []

    def opts(url: str, _fast: bool) -> BacktestOptions:  # both runs on the fast path
        model = next(models)
        if isinstance(model, _Reused):
            reused.append(model)
        with connect(url, autocommit=True) as conn:
            method = method_row(conn, "mean_reversion", "mean_reversion")
        return BacktestOptions(data=tmp_path / "rec", out=tmp_path / "out", fast_path=True,
                               extra_models={"mean_reversion": model}, extra_methods=[method])

    (every, every_trades), (cached, cached_trades) = await _both(make_database, opts, config)
    assert len(every_trades) >= 20 and cached_trades == every_trades
    assert cached["orders"] == every["orders"] and cached["final_positions"] == every["final_positions"]
    assert cached["windows"][0]["entries_refused"] == every["windows"][0]["entries_refused"]
    assert cached["windows"][0]["breakers"] == every["windows"][0]["breakers"]
    decisions = sum(every["windows"][0]["entries_refused"].values())
    assert reused[0].asked < decisions / 2, (reused[0].asked, decisions)  # most asks were repeats
