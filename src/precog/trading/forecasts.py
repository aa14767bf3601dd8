"""What the trading side needs from a probability model: P(YES) of one market, as a Decimal.

The forecasting package answers P(home team wins) for a game (`precog.forecast.interface`:
`predict_pregame(home, away, neutral=...)` / `predict_state(state, neutral=...)`); a market pays YES on one team
(`MarketView.yes_team`, from the ingestion's game links), so `WinProbabilityAdapter` turns one into the other.
`TickerProbabilityModel` answers from a fixed table of P(YES) per market ticker (tests, benchmarks, manual
overrides).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from precog.domain.money import ONE, ZERO, to_decimal
from precog.trading.views import GameView, MarketView

PREGAME = frozenset({"scheduled", "pregame", "postponed"})


class ForecastError(ValueError):
    """A model version that cannot be used; the message names it."""


@dataclass(frozen=True, slots=True)
class Forecast:
    """P(YES) for one market. `confidence` in [0, 1]; `level` (high/medium/low) when the model grades itself."""

    p_yes: Decimal
    confidence: Decimal
    sample_size: int | None = None
    ci_width: Decimal | None = None
    level: str | None = None


class ProbabilityModel(Protocol):
    """A model version the decision engine can ask. `model_id` is its `probability_models` row."""

    model_id: int | None
    name: str
    version: str
    status: str

    def forecast(self, market: MarketView, game: GameView | None) -> Forecast | None:
        """P(YES) for the market, or None when the model has nothing to say about it."""
        ...


def grade(confidence: Decimal, sample_size: int | None, ci_width: Decimal | None) -> str:
    """Confidence level high / medium / low (spec 5.1): sample >= 500 and CI width < 0.10 is high; >= 200 and
    <= 0.15 medium; else low. Models that report only a number: >= 0.80 high, >= 0.60 medium, else low."""
    if sample_size is None and ci_width is None:
        return "high" if confidence >= Decimal("0.80") else "medium" if confidence >= Decimal("0.60") else "low"
    if (sample_size is None or sample_size >= 500) and (ci_width is None or ci_width < Decimal("0.10")):
        return "high"
    if (sample_size is None or sample_size >= 200) and (ci_width is None or ci_width <= Decimal("0.15")):
        return "medium"
    return "low"


@dataclass(frozen=True, slots=True)
class ModelRef:
    model_id: int | None
    name: str
    version: str
    status: str = "active"

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


def _prob(value: Any, where: str) -> Decimal:
    try:
        p = to_decimal(value, field=where)
    except ValueError as exc:
        raise ForecastError(str(exc)) from exc
    if not ZERO <= p <= ONE:
        raise ForecastError(f"{where}: {p} is not a probability in [0, 1]")
    return p


class TickerProbabilityModel:
    """P(YES) from a table: one probability per market ticker, else `default` (None: no opinion)."""

    def __init__(self, probabilities: dict[str, Decimal | str], *, default: Decimal | str | None = None,
                 confidence: Decimal | str = "0.80", sample_size: int | None = None,
                 ci_width: Decimal | str | None = None, name: str = "ticker_table", version: str = "v1.0",
                 model_id: int | None = None, status: str = "active") -> None:
        self.model_id = model_id
        self.name = name
        self.version = version
        self.status = status
        conf = _prob(confidence, "confidence")
        ci = _prob(ci_width, "ci_width") if ci_width is not None else None
        level = grade(conf, sample_size, ci)
        self._by_ticker = {str(t): Forecast(_prob(p, f"probabilities.{t}"), conf, sample_size, ci, level)
                           for t, p in probabilities.items()}
        self._default = Forecast(_prob(default, "default"), conf, sample_size, ci, level) \
            if default is not None else None

    def forecast(self, market: MarketView, game: GameView | None) -> Forecast | None:
        return self._by_ticker.get(market.ticker, self._default)

    @property
    def ref(self) -> ModelRef:
        return ModelRef(self.model_id, self.name, self.version, self.status)


class WinProbabilityAdapter:
    """A `precog.forecast.interface.WinProbabilityModel` as a per-market P(YES) model.

    In-game (a live/halftime/final state) it asks `predict_state`; before the game `predict_pregame` with the
    teams of the game state, or of the market when no state is known. Both are told whether the game is at a
    neutral site (`GameState.neutral_site`). P(YES) = P(the market's team wins),
    before any shrinkage (the engine shrinks once). Markets of another sport than the model's get None.
    Forecasts are cached per game state (its content), since every market of a game asks the same question."""

    def __init__(self, model: Any, *, model_id: int | None, name: str, version: str, status: str,
                 sport: str | None = None) -> None:
        self.model = model
        self.sport = sport or None  # none (or empty): a multi-sport model
        self.model_id = model_id
        self.name = name
        self.version = version
        self.status = status
        self.errors = 0
        self.last_error: str | None = None
        self._cache: dict[tuple[str, tuple[Any, ...]], Any] = {}

    def _home_forecast(self, market: MarketView, game: GameView | None) -> Any:
        from precog.forecast.errors import ForecastError as ModelFailure

        key = (market.event_ticker, game.state.state_key() if game is not None else ())
        found = self._cache.get(key)
        if found is not None:
            return found
        if len(self._cache) > 50000:
            self._cache.clear()
        # a game at neither team's stadium (ESPN neutralSite, stored with the game state) gives the listed home
        # team no home-field advantage; without a game state nothing says the site is neutral
        neutral = game.neutral_site if game is not None else False
        try:
            if game is not None and game.state.status not in PREGAME:
                found = self.model.predict_state(game.state, neutral=neutral)
            else:
                home = game.state.home_team if game is not None else market.home_team
                away = game.state.away_team if game is not None else market.away_team
                if not home or not away:
                    return None
                found = self.model.predict_pregame(home, away, neutral=neutral,
                                                   playoff=market.special_event is not None)
        except ModelFailure as exc:
            self.errors += 1
            self.last_error = f"{self.name}@{self.version} on {market.ticker}: {exc}"
            return None
        self._cache[key] = found
        return found

    def forecast(self, market: MarketView, game: GameView | None) -> Forecast | None:
        if market.yes_team not in ("home", "away"):
            return None
        # team codes repeat across leagues (NFL and NBA DEN/CHI/PHI, NCAAF MIA): a model only prices its sport
        if self.sport is not None and market.sport != self.sport:
            return None
        f = self._home_forecast(market, game)
        if f is None:
            return None
        # the decision engine applies the spec 5.1 shrinkage toward 0.5 itself (per strategy; none for settlement
        # arbitrage), so a model that already shrank (the ensemble) hands over its raw P(home) - shrinking twice
        # would understate every edge and cap p at 0.95
        details = getattr(f, "details", None) or {}
        raw = details.get("raw_probability")
        p_home = raw if isinstance(raw, Decimal) and ZERO <= raw <= ONE else f.probability
        p_yes = p_home if market.yes_team == "home" else ONE - p_home
        sample = getattr(f, "sample_size", None)
        return Forecast(p_yes, Decimal(f.confidence_score), sample or None, None, getattr(f, "confidence", None))


def load_trading_model(conn: Any, *, model_id: int, name: str, version: str, status: str) -> ProbabilityModel:
    """The predictor of a `probability_models` row, from the forecasting package's registry."""
    from precog.forecast.errors import ForecastError as ModelFailure
    from precog.forecast.interface import load_model
    from precog.forecast.registry import get_model

    try:
        model = load_model(conn, f"{name}@{version}")
        sport = get_model(conn, f"{name}@{version}").sport  # None: a multi-sport model
    except (ModelFailure, ValueError) as exc:  # ValueError: a stored config the registry cannot read
        raise ForecastError(f"model {name}@{version}: {exc}") from exc
    return WinProbabilityAdapter(model, model_id=model_id, name=name, version=version, status=status, sport=sport)
