"""Scripted NFL games on the exchange: each game is a Kalshi event (`KXNFLGAME-25OCT05-NEBUF`) with one
market per team (YES = that team wins). The game clock runs `speed` times faster than the exchange clock;
scoring follows a script or a seeded simulation; the fair value is an in-game win probability; a market
maker quotes around it; at the final whistle the markets close and settle (a tie settles at 0.50).

Win probability: P(home wins) = Phi((margin + edge x f) / (13.45 x sqrt(f))), f = fraction of the game left,
edge = the home team's expected margin (points). It is a float model; quotes are rounded to whole cents.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from decimal import Decimal

from precog.venues.exchange.engine import Exchange
from precog.venues.exchange.model import ACTIVE, CLOSED, FINALIZED
from precog.venues.exchange.scenarios.market_maker import BP, MarketMaker, NoiseTrader

GAME_SECONDS = 3600
SIGMA_POINTS = 13.45
SERIES = "KXNFLGAME"


@dataclass(frozen=True)
class ScoringPlay:
    game_second: int  # seconds since kickoff on the game clock
    team: str  # "home" or "away"
    points: int


@dataclass
class GameScript:
    away: str
    home: str
    home_edge_points: float = 2.5  # pre-game expected home margin
    plays: list[ScoringPlay] | None = None  # None = simulate with the scenario's seeded RNG


def home_win_probability(margin: int, seconds_left: float, edge_points: float) -> float:
    """In-game win probability for the home team (normal model of the remaining margin)."""
    if seconds_left <= 0:
        return 1.0 if margin > 0 else 0.0 if margin < 0 else 0.5
    f = seconds_left / GAME_SECONDS
    z = (margin + edge_points * f) / (SIGMA_POINTS * math.sqrt(f))
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def simulate_plays(rng: random.Random, edge_points: float) -> list[ScoringPlay]:
    """About 11 drives per team; the stronger team converts more often."""
    plays: list[ScoringPlay] = []
    second = 0
    team = "away" if rng.random() < 0.5 else "home"
    home_boost = max(-0.15, min(0.15, edge_points / 40.0))
    while True:
        second += rng.randint(120, 210)
        if second >= GAME_SECONDS:
            break
        boost = home_boost if team == "home" else -home_boost
        r = rng.random()
        if r < 0.22 + boost:
            plays.append(ScoringPlay(second, team, 7))
        elif r < 0.38 + boost:
            plays.append(ScoringPlay(second, team, 3))
        team = "home" if team == "away" else "away"
    return plays


@dataclass
class ScriptedGame:
    exchange: Exchange
    script: GameScript
    kickoff_ms: int
    date_code: str
    speed: float
    rng: random.Random
    event_ticker: str = ""
    home_ticker: str = ""
    away_ticker: str = ""
    home_score: int = 0
    away_score: int = 0
    next_play: int = 0
    final: bool = False
    makers: list[MarketMaker] = field(default_factory=list)
    traders: list[NoiseTrader] = field(default_factory=list)

    def __post_init__(self) -> None:
        ex = self.exchange
        s = self.script
        if s.plays is None:
            s.plays = simulate_plays(self.rng, s.home_edge_points)
        s.plays.sort(key=lambda p: p.game_second)
        self.event_ticker = f"{SERIES}-{self.date_code}-{s.away}{s.home}"
        self.home_ticker = f"{self.event_ticker}-{s.home}"
        self.away_ticker = f"{self.event_ticker}-{s.away}"
        wall_game_ms = int(GAME_SECONDS / self.speed * 1000)
        # Kalshi's shape: expected to settle at the final whistle, trading may last until an hour after it
        game_end_ms = self.kickoff_ms + wall_game_ms
        close_ms = game_end_ms + 3_600_000
        with ex.lock:
            if SERIES not in ex.series:
                ex.create_series(SERIES, "Professional Football Game", tags=["Football"])
            ex.create_event(self.event_ticker, SERIES, f"{s.away} at {s.home}", f"{s.away} @ {s.home}")
            for team, ticker in ((s.home, self.home_ticker), (s.away, self.away_ticker)):
                ex.create_market(ticker, self.event_ticker, title=f"{s.away} at {s.home} Winner?",
                                 yes_sub_title=team, no_sub_title=team, close_ms=close_ms,
                                 expected_expiration_ms=game_end_ms,
                                 rules_primary=f"If {team} wins the {s.away} at {s.home} game, the market "
                                               "resolves to Yes.")
            for ticker in (self.home_ticker, self.away_ticker):
                maker = ex.create_account(balance=Decimal("1000000"))
                self.makers.append(MarketMaker(ex, maker.user_id, ticker, rng=random.Random(self.rng.random())))
                taker = ex.create_account(balance=Decimal("1000000"))
                self.traders.append(NoiseTrader(ex, taker.user_id, random.Random(self.rng.random())))

    def game_second(self, now_ms: int) -> float:
        return max(0.0, (now_ms - self.kickoff_ms) / 1000 * self.speed)

    def home_fair_bp(self, now_ms: int) -> int:
        left = GAME_SECONDS - min(GAME_SECONDS, self.game_second(now_ms))
        p = home_win_probability(self.home_score - self.away_score, left, self.script.home_edge_points)
        return int(round(p * BP))

    def step(self, now_ms: int) -> None:
        if self.final:
            return
        second = self.game_second(now_ms)
        plays = self.script.plays or []
        while self.next_play < len(plays) and plays[self.next_play].game_second <= second:
            play = plays[self.next_play]
            if play.team == "home":
                self.home_score += play.points
            else:
                self.away_score += play.points
            self.next_play += 1
        if second >= GAME_SECONDS:
            self._finish()
            return
        home_bp = self.home_fair_bp(now_ms)
        for maker, trader, fair in ((self.makers[0], self.traders[0], home_bp),
                                    (self.makers[1], self.traders[1], BP - home_bp)):
            maker.quote(max(100, min(BP - 100, fair)))
            trader.maybe_trade(maker.ticker, fair)

    def _finish(self) -> None:
        ex = self.exchange
        margin = self.home_score - self.away_score
        home_value = Decimal(1) if margin > 0 else Decimal(0) if margin < 0 else Decimal("0.5")
        with ex.lock:
            for ticker, value in ((self.home_ticker, home_value), (self.away_ticker, 1 - home_value)):
                m = ex.markets[ticker]
                if m.status == ACTIVE:
                    ex.set_market_status(ticker, CLOSED)
                if m.status != FINALIZED:
                    ex.settle_market(ticker, value)
        self.final = True


DEFAULT_SLATE = (
    GameScript("NE", "BUF", home_edge_points=4.5),
    GameScript("KC", "LV", home_edge_points=-6.0),
    GameScript("DAL", "PHI", home_edge_points=3.0),
)


class NFLScenario:
    """A slate of games kicking off `stagger_s` apart (exchange-clock seconds), played at `speed`x."""

    name = "nfl"

    def __init__(self, exchange: Exchange, *, seed: int = 1, speed: float = 60.0, stagger_s: float = 30.0,
                 first_kickoff_in_s: float = 10.0, slate: tuple[GameScript, ...] | None = None,
                 date_code: str = "25OCT05") -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.exchange = exchange
        rng = random.Random(seed)
        now = exchange.now_ms()
        scripts = slate if slate is not None else DEFAULT_SLATE
        self.games = [
            ScriptedGame(exchange, GameScript(s.away, s.home, s.home_edge_points,
                                              list(s.plays) if s.plays is not None else None),
                         kickoff_ms=now + int((first_kickoff_in_s + i * stagger_s) * 1000), date_code=date_code,
                         speed=speed, rng=random.Random(rng.random()))
            for i, s in enumerate(scripts)
        ]

    def step(self, now_ms: int) -> None:
        for game in self.games:
            game.step(now_ms)

    @property
    def finished(self) -> bool:
        return all(g.final for g in self.games)
