"""The in-memory state a decision is made from: one market, its game, and our positions.

Built once per update by the caller (the trading loop from its live state, `precog edges scan` from the
database, the benchmark from generated data), then read many times by the scan. Times are epoch seconds
(float) because they are compared, never priced; prices are Decimal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from precog.domain.market import expected_settlement
from precog.domain.money import ONE
from precog.feeds.game_state import GameState

YES = "yes"
NO = "no"
SIDES = (YES, NO)
LIVE_GAME_STATUSES = frozenset({"live", "halftime"})

# Regulation length of each sport: (periods, seconds per period).
REGULATION: dict[str, tuple[int, int]] = {
    "nfl": (4, 900),
    "ncaaf": (4, 900),
    "nba": (4, 720),
    "ncaab": (2, 1200),
    "nhl": (3, 1200),
}


def correlation_group(sport: str, event_ticker: str, start_ts: float | None) -> str:
    """Positions that move together (spec 5.3 "same category/time"): the sport and the event's start day
    (one slate of games); without a start time, the event itself."""
    if start_ts is not None:
        return f"{sport}:{datetime.fromtimestamp(start_ts, UTC).date().isoformat()}"
    return f"{sport}:{event_ticker}"


@dataclass(frozen=True, slots=True)
class MarketView:
    """One open market as the decision engine sees it.

    `event_ticker` is the game/event key: every market of one game shares it, so exposure per game adds
    up all of its markets and both sides. `yes_team` ('home'/'away', when known) says whose win YES pays.
    """

    ticker: str
    event_ticker: str
    sport: str
    yes_bid: Decimal
    yes_ask: Decimal
    status: str = "open"
    volume: int = 0
    close_ts: float | None = None  # trading close (Kalshi close_time: for a game, the latest it may close)
    expected_expiration_ts: float | None = None  # when the venue expects to settle it (Kalshi's estimate)
    quote_ts: float | None = None
    fee_multiplier: Decimal = ONE
    series_ticker: str = ""
    category: str = "sports"
    market_type: str = "binary"
    market_kind: str = "game_winner"
    special_event: str | None = None  # None | "playoffs" | "championship"
    correlation_group: str = ""
    yes_team: str | None = None
    home_team: str = ""  # team codes, when known (pre-game forecasts need them)
    away_team: str = ""
    start_ts: float | None = None  # scheduled start of the event, when known
    volatility_ratio: Decimal | None = None  # recent price volatility / normal (spec 5.3)
    market_version_id: int | None = None
    title: str = ""
    # markets.yaml global_filters read these; None = the venue did not report it (refused while a filter needs it)
    volume_24h: int | None = None
    open_interest: int | None = None
    # contracts at the best YES bid / YES ask (Kalshi yes_bid_size_fp / yes_ask_size_fp) and when the market
    # opened (Kalshi open_time); same rule: None = not reported
    yes_bid_size: Decimal | None = None
    yes_ask_size: Decimal | None = None
    open_ts: float | None = None

    def price_of(self, side: str) -> Decimal:
        """The price we pay to buy `side`: the YES ask, or the NO ask = 1 - YES bid."""
        return self.yes_ask if side == YES else ONE - self.yes_bid

    def bid_of(self, side: str) -> Decimal:
        return self.yes_bid if side == YES else ONE - self.yes_ask

    def ask_size_of(self, side: str) -> Decimal | None:
        """Contracts offered at `price_of(side)`: the YES ask's size, or for NO the YES bid's size (a bid for
        YES at p is an offer of NO at 1 - p, the NO ask). None when the venue did not report it."""
        return self.yes_ask_size if side == YES else self.yes_bid_size

    @property
    def spread(self) -> Decimal:
        """Same on both sides: NO ask - NO bid = YES ask - YES bid."""
        return self.yes_ask - self.yes_bid

    @property
    def settlement_ts(self) -> float | None:
        """When the market is expected to settle (`precog.domain.market.expected_settlement`): the venue's
        expected expiration, else the close."""
        return expected_settlement(self.expected_expiration_ts, self.close_ts)

    group: str = field(init=False, default="", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "group", self.correlation_group or
                           correlation_group(self.sport, self.event_ticker, self.start_ts))


@dataclass(frozen=True, slots=True)
class GameView:
    """A game state and when we observed it (freshness), plus when halftime began if we saw it begin."""

    state: GameState
    observed_ts: float
    halftime_started_ts: float | None = None
    start_ts: float = field(init=False, default=0.0, compare=False)  # the state start time, computed once

    def __post_init__(self) -> None:
        object.__setattr__(self, "start_ts", self.state.start_time.timestamp())

    def seconds_remaining(self) -> int | None:
        """Regulation game time left (overtime: the period clock); None when the sport has no clock."""
        reg = REGULATION.get(self.state.sport)
        clock = self.state.clock_seconds
        if reg is None or clock is None:
            return None
        periods, length = reg
        period = self.state.period
        if period <= 0:
            return periods * length
        if period > periods:
            return clock
        return (periods - period) * length + clock

    @property
    def metadata(self) -> dict[str, Any]:
        return self.state.metadata

    @property
    def neutral_site(self) -> bool:
        """The game is at neither team's stadium: the listed home team has no home-field advantage."""
        return self.state.neutral_site


@dataclass(frozen=True, slots=True)
class PositionView:
    """An open position (or a resting entry order) as exposure: `cost` is the money at risk."""

    ticker: str
    event_ticker: str
    sport: str
    side: str
    quantity: int
    cost: Decimal
    correlation_group: str = ""
    method_id: int | None = None
    position_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
