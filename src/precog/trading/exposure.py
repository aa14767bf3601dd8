"""Money at risk, aggregated the ways the limits need it: per market, game, sport, correlated group, total.

A binary contract bought at c can lose at most c, so a holding's exposure is its cost (price x contracts +
fees). Both sides of a market and every market of a game add into the game's exposure. Aggregates are kept
incrementally so a risk check is a few dictionary reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from precog.domain.money import ZERO

Key = tuple[str, str]  # (ticker, side)


@dataclass(slots=True)
class Holding:
    ticker: str
    side: str
    event: str
    sport: str
    group: str
    cost: Decimal


class ExposureBook:
    __slots__ = ("holdings", "by_market", "by_game", "game_holdings", "by_sport", "by_group", "total",
                 "holdings_by_sport", "holdings_by_group")

    def __init__(self) -> None:
        self.holdings: dict[Key, Holding] = {}
        self.by_market: dict[str, Decimal] = {}
        self.by_game: dict[str, Decimal] = {}
        self.game_holdings: dict[str, set[Key]] = {}
        self.by_sport: dict[str, Decimal] = {}
        self.by_group: dict[str, Decimal] = {}
        self.total = ZERO
        self.holdings_by_sport: dict[str, int] = {}  # holdings (= markets: never both sides of one) per sport
        self.holdings_by_group: dict[str, int] = {}  # holdings per correlated group (views.correlation_group)

    @property
    def open_positions(self) -> int:
        return len(self.holdings)

    def holds(self, ticker: str, side: str) -> bool:
        return (ticker, side) in self.holdings

    def positions_in_game(self, event: str) -> int:
        keys = self.game_holdings.get(event)
        return len(keys) if keys else 0

    def largest_in_game(self, event: str) -> Decimal:
        keys = self.game_holdings.get(event)
        if not keys:
            return ZERO
        return max(self.holdings[k].cost for k in keys)

    def add(self, ticker: str, side: str, event: str, sport: str, group: str, cost: Decimal) -> None:
        key = (ticker, side)
        holding = self.holdings.get(key)
        if holding is None:
            self.holdings[key] = Holding(ticker, side, event, sport, group, cost)
            self.game_holdings.setdefault(event, set()).add(key)
            self.holdings_by_sport[sport] = self.holdings_by_sport.get(sport, 0) + 1
            self.holdings_by_group[group] = self.holdings_by_group.get(group, 0) + 1
        else:
            holding.cost += cost
        self.by_market[ticker] = self.by_market.get(ticker, ZERO) + cost
        self.by_game[event] = self.by_game.get(event, ZERO) + cost
        self.by_sport[sport] = self.by_sport.get(sport, ZERO) + cost
        self.by_group[group] = self.by_group.get(group, ZERO) + cost
        self.total += cost

    def remove(self, ticker: str, side: str, cost: Decimal) -> None:
        """Take `cost` off a holding (all of it when cost >= the holding); unknown holdings are ignored."""
        key = (ticker, side)
        holding = self.holdings.get(key)
        if holding is None:
            return
        cost = min(cost, holding.cost)
        holding.cost -= cost
        self.by_market[ticker] -= cost
        self.by_game[holding.event] -= cost
        self.by_sport[holding.sport] -= cost
        self.by_group[holding.group] -= cost
        self.total -= cost
        if holding.cost <= ZERO:
            del self.holdings[key]
            self.holdings_by_sport[holding.sport] -= 1
            self.holdings_by_group[holding.group] -= 1
            keys = self.game_holdings.get(holding.event)
            if keys is not None:
                keys.discard(key)
