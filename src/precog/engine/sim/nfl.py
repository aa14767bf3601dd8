"""Simulated NFL games on the local exchange: drives that score like real football, a market maker quoting
around a noisy fair value, and the win-probability models the demo's methods trade on.

Game model: alternating possessions; each drive takes 1.5-4 minutes of game clock and ends in a touchdown
(7), field goal (3) or nothing, with probabilities tilted by the Elo gap (NFL drives score a TD ~22% and a
FG ~17% of the time). A regulation tie goes to a 10-minute overtime (first score wins); still level, the
market settles at 0.5 (a fractional settlement, as Kalshi does for ties).

In-game win probability (Stern 1991, also the market maker's fair value):
P(home) = Phi((margin + spread x f) / (13.45 x sqrt(f))) with f the fraction of the game left and
spread = (Elo_home + 48 - Elo_away) / 25 points. Probabilities are model outputs (floats inside the
maths, Decimal with 4 places at the boundary); every price and amount is Decimal.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from decimal import Decimal

from precog.domain.money import ONE, ZERO, to_decimal
from precog.venues.exchange.engine import Exchange
from precog.venues.exchange.errors import ExchangeError

GAME_SECONDS = 3600
OT_SECONDS = 600
HOME_FIELD_ELO = 48.0
SIGMA = 13.45


def phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def prob(x: float) -> Decimal:
    """A model probability as a Decimal in [0.0001, 0.9999]."""
    return to_decimal(f"{min(max(x, 0.0001), 0.9999):.4f}")


def elo_pregame(elo_home: float, elo_away: float) -> float:
    return 1.0 / (1.0 + 10 ** (-(elo_home + HOME_FIELD_ELO - elo_away) / 400.0))


@dataclass
class SimGame:
    game_id: str
    home: str
    away: str
    elo_home: float
    elo_away: float
    start_s: float  # seconds after the scenario start
    rng: random.Random
    home_score: int = 0
    away_score: int = 0
    elapsed: float = 0.0  # game clock seconds played
    possession: str = "home"
    drive_left: float = 0.0
    status: str = "scheduled"  # scheduled | live | final
    overtime: bool = False
    settlement_value: Decimal | None = None
    events: list[str] = field(default_factory=list)
    last_score_at: float = -1e9

    @property
    def spread(self) -> float:
        return (self.elo_home + HOME_FIELD_ELO - self.elo_away) / 25.0

    @property
    def period(self) -> int:
        return 5 if self.overtime else min(4, int(self.elapsed // 900) + 1)

    @property
    def seconds_left(self) -> float:
        if self.overtime:
            return max(0.0, GAME_SECONDS + OT_SECONDS - self.elapsed)
        return max(0.0, GAME_SECONDS - self.elapsed)

    def win_probability(self) -> float:
        """P(home wins) now (Stern's normal model; ties count half)."""
        if self.status == "final":
            return float(self.settlement_value or 0)
        margin = self.home_score - self.away_score
        if self.overtime:
            return 0.5 + (self.spread / 40.0)
        f = max(self.seconds_left / GAME_SECONDS, 1e-4)
        return phi((margin + self.spread * f) / (SIGMA * math.sqrt(f)))

    def _drive_outcome(self) -> int:
        gap = (self.elo_home + HOME_FIELD_ELO - self.elo_away) / 400.0
        tilt = gap if self.possession == "home" else -gap
        td = min(max(0.22 + 0.12 * tilt, 0.08), 0.40)
        fg = 0.17
        r = self.rng.random()
        return 7 if r < td else 3 if r < td + fg else 0

    def advance(self, now_s: float, dt: float) -> None:
        """Move the game forward dt seconds of game clock (when it has started)."""
        if self.status == "final" or now_s < self.start_s:
            return
        if self.status == "scheduled":
            self.status = "live"
            self.possession = "home" if self.rng.random() < 0.5 else "away"
            self.drive_left = self.rng.uniform(90, 240)
        remaining = dt
        while remaining > 0 and self.status == "live":
            step = min(remaining, self.drive_left, self.seconds_left)
            self.elapsed += step
            self.drive_left -= step
            remaining -= step
            if self.drive_left <= 0:
                pts = self._drive_outcome()
                if pts:
                    if self.possession == "home":
                        self.home_score += pts
                    else:
                        self.away_score += pts
                    self.last_score_at = now_s
                    self.events.append(f"{self.possession} +{pts}")
                    if self.overtime:
                        self._finish()
                        return
                self.possession = "away" if self.possession == "home" else "home"
                self.drive_left = self.rng.uniform(90, 240)
            if self.seconds_left <= 0:
                if self.home_score == self.away_score and not self.overtime:
                    self.overtime = True
                    self.drive_left = self.rng.uniform(90, 240)
                else:
                    self._finish()
                    return

    def _finish(self) -> None:
        self.status = "final"
        if self.home_score > self.away_score:
            self.settlement_value = ONE
        elif self.home_score < self.away_score:
            self.settlement_value = ZERO
        else:
            self.settlement_value = Decimal("0.5")


class MarketMaker:
    """Quotes both sides of each game's market around the game's fair value plus slow noise.

    Bid/ask one cent either side of the noisy fair value (wider for a while after a score), three levels of
    size; re-quotes every step (cancel, then place), so resting orders of others trade against it."""

    def __init__(self, exchange: Exchange, user_id: str, rng: random.Random, *, noise_sd: float = 0.035,
                 size: int = 150) -> None:
        self.exchange = exchange
        self.user_id = user_id
        self.rng = rng
        self.noise_sd = noise_sd
        self.size = size
        self.noise: dict[str, float] = {}
        self.orders: dict[str, list[str]] = {}

    def quote(self, ticker: str, game: SimGame, now_s: float) -> None:
        for oid in self.orders.pop(ticker, []):
            try:
                if self.exchange.get_order(self.user_id, oid).status == "resting":
                    self.exchange.cancel_order(self.user_id, oid)
            except ExchangeError:
                pass
        if game.status == "final":
            return
        # mean-reverting noise: the market maker's view wanders around the truth
        sd = self.noise_sd * (1.8 if game.status == "scheduled" else 1.0)  # pre-game lines are less settled
        n = self.noise.get(ticker, self.rng.gauss(0, sd))
        n = 0.9 * n + self.rng.gauss(0, sd * math.sqrt(1 - 0.81))
        self.noise[ticker] = n
        fair = min(max(game.win_probability() + n, 0.03), 0.97)
        half = 2 if now_s - game.last_score_at < 60 and self.rng.random() < 0.5 else 1
        mid = int(round(fair * 100))
        bid = max(1, min(97, mid - half))
        ask = min(99, max(bid + 2 * half if half > 1 else bid + 2, mid + half))
        placed: list[str] = []
        for lvl in range(3):
            b, a = bid - lvl, ask + lvl
            qty = self.size * (lvl + 1)
            try:
                if b >= 1:
                    placed.append(self.exchange.place_order(self.user_id, ticker, "yes", "buy", qty,
                                                            Decimal(b) / 100).order_id)
                if a <= 99:
                    placed.append(self.exchange.place_order(self.user_id, ticker, "no", "buy", qty,
                                                            Decimal(100 - a) / 100).order_id)
            except ExchangeError:
                continue
        self.orders[ticker] = placed
