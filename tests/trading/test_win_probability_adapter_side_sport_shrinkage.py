"""`WinProbabilityAdapter`: a forecasting model's P(home wins) as the P(YES) the decision engine prices.

Relied on: YES pays the market's `yes_team`; the spec 5.1 shrinkage toward 0.5 is applied exactly once (by the
decision engine, per strategy - settlement arbitrage uses none), so an ensemble that already shrank its
answer hands over its raw probability; and a model answers only the markets of its own sport.
"""

from __future__ import annotations

from decimal import Decimal

from trading_testkit import DEFAULTS, NOW, game, market, strategy

from precog.forecast.builtin import load_builtin_wp
from precog.forecast.configs import EnsembleConfig
from precog.forecast.elo import TUNED_NFL_CONFIG
from precog.forecast.interface import EloForecaster, EnsembleForecaster, WpForecaster, ratings_from_mapping
from precog.trading.decide import DecisionEngine, DecisionUnit
from precog.trading.forecasts import ModelRef, WinProbabilityAdapter
from precog.trading.risk import RiskManager

D = Decimal


def _elo() -> EloForecaster:
    # a mismatch: KC is ~ 0.96 to beat CAR at home
    return EloForecaster(TUNED_NFL_CONFIG, ratings_from_mapping({"KC": 1800, "BUF": 1620, "CAR": 1300}),
                         sample_size=1335)


def _adapter(model: object, *, sport: str | None = "nfl") -> WinProbabilityAdapter:
    return WinProbabilityAdapter(model, model_id=5, name="ensemble_nfl", version="v1.0", status="active", sport=sport)


def test_yes_on_the_away_team_is_one_minus_p_home() -> None:
    elo = _elo()
    adapter = _adapter(elo, sport="nfl")
    p_home = elo.predict_pregame("KC", "CAR").probability
    home = adapter.forecast(market(yes_team="home", home_team="KC", away_team="CAR"), None)
    away = adapter.forecast(market(ticker="KXNFLGAME-X-CAR", yes_team="away", home_team="KC", away_team="CAR"), None)
    assert home is not None and away is not None
    assert home.p_yes == p_home and away.p_yes == 1 - p_home


def test_ensemble_forecast_reaches_the_engine_unshrunk_so_shrinkage_applies_once() -> None:
    elo = _elo()
    ens = EnsembleForecaster(EnsembleConfig(weights={"elo": 1.0}), elo, None, [])
    f = ens.predict_pregame("KC", "CAR")
    raw = f.details["raw_probability"]
    assert f.probability < raw  # the ensemble itself shrank by 0.10
    got = _adapter(ens).forecast(market(yes_team="home", home_team="KC", away_team="CAR"), None)
    assert got is not None
    # expected: the raw probability; the engine then shrinks it once (0.5 + (p - 0.5) x 0.9)
    assert got.p_yes == raw


def test_settlement_arbitrage_can_fire_on_an_ensemble_model() -> None:
    """The YAML turns shrinkage off for settlement arbitrage so p >= 0.98 is reachable; an ensemble that
    pre-shrank (max 0.95) would make the strategy silently dead on the shipped ensemble_nfl."""
    elo = _elo()
    wp = WpForecaster(load_builtin_wp(), elo, sample_size=22379)
    ens = EnsembleForecaster(EnsembleConfig(weights={"elo": 0.4, "winprob": 0.6}), elo, wp, [])
    adapter = _adapter(ens)
    s = strategy("settlement_arbitrage")
    g = game("live", period=4, clock=60, home=35, away=0, possession="home", home_timeouts=0, away_timeouts=0)
    # KC leads CAR by 35 with a minute left; the market still offers the KC YES at 0.90
    m = market(yes_team="home", home_team="KC", away_team="CAR", bid="0.88", ask="0.90")
    unit = DecisionUnit(s, adapter, ModelRef(5, "ensemble_nfl", "v1.0"))
    eng = DecisionEngine(DEFAULTS, [unit], RiskManager(DEFAULTS, clock=lambda: NOW), clock=lambda: NOW)
    result = eng.scan([m], {m.event_ticker: g}, balance=D("10000"), now=NOW)
    yes = [r for r in result.edges if r.side == "yes"][0]
    assert yes.p_side >= D("0.98"), yes
    assert yes.reason is None, yes.reason


def test_a_model_does_not_forecast_markets_of_another_sport() -> None:
    """NBA's DEN/CHI and NFL's DEN/CHI share codes: an NFL Elo must not price the basketball game."""
    elo = EloForecaster(TUNED_NFL_CONFIG, ratings_from_mapping({"DEN": 1700, "CHI": 1400}), sample_size=1335)
    adapter = _adapter(elo, sport="nfl")
    nba = market("KXNBAGAME-25DEC28CHIDEN-DEN", event="KXNBAGAME-25DEC28CHIDEN", sport="nba", yes_team="home",
                 home_team="DEN", away_team="CHI")
    nfl = market("KXNFLGAME-25DEC28CHIDEN-DEN", event="KXNFLGAME-25DEC28CHIDEN", sport="nfl", yes_team="home",
                 home_team="DEN", away_team="CHI")
    assert adapter.forecast(nfl, None) is not None
    assert adapter.forecast(nba, None) is None
    # a model without a sport (multi-sport) answers every market
    assert _adapter(elo, sport=None).forecast(nba, None) is not None

