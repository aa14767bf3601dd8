"""markets.yaml `prioritization.sort_by: composite` (spec markets.yaml: "composite 0.50 edge / 0.25 liquidity /
0.25 confidence"): a decision scan can put its candidates to risk approval by a weighted score of the edge, the
dollars offered at the entry price and the forecast's confidence level, so when the limits leave room for one
entry a slightly smaller edge in a deep, well-understood market wins over the largest edge in a thin market the
model is unsure of. It used to be refused as "cannot be computed"; `composite_weights` still is, pointing here."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from trading_testkit import DEFAULTS, NOW, game, market, settings, strategy

from precog.config.errors import ConfigError
from precog.config.loader import load_config
from precog.trading.decide import DecisionEngine, DecisionUnit
from precog.trading.forecasts import TickerProbabilityModel
from precog.trading.priority import Candidate, CompositeWeights, composite_scores
from precog.trading.risk import RiskManager
from precog.trading.settings import TradingSettings

D = Decimal
SPEC = CompositeWeights(D("0.50"), D("0.25"), D("0.25"))

# ------------------------------------------------------------------ the scan: who gets the one place left

THIN = "KXNFLGAME-25DEC28AAABBB-AAA"  # the largest edge, 10 contracts offered, a low-confidence forecast
DEEP = "KXNFLGAME-25DEC28CCCDDD-CCC"  # a slightly smaller edge, 5,000 offered, a high-confidence forecast
MID = "KXNFLGAME-25DEC28EEEFFF-EEE"   # the smallest edge, 500 offered, a medium-confidence forecast


def _scan(sort_by: str, weights: CompositeWeights = SPEC, *, room: int = 1) -> tuple[list[str], list[tuple[str, str]]]:
    """Approved tickers, and (ticker, check) of the refusals, when `room` more markets fit."""
    cfg = replace(settings(max_open_positions=100, max_simultaneous_markets=room, max_markets_per_sport=100),
                  prioritize_by=sort_by, composite_weights=weights)
    # one model per confidence level (the level comes from the forecast's sample size and CI width, spec 5.1);
    # every forecast's confidence number (0.85) clears confidence_min, so only the level differs
    low = TickerProbabilityModel({THIN: "0.80"}, confidence="0.85", sample_size=100, ci_width="0.20", model_id=3)
    high = TickerProbabilityModel({DEEP: "0.78"}, confidence="0.85", model_id=4)
    medium = TickerProbabilityModel({MID: "0.72"}, confidence="0.85", sample_size=300, ci_width="0.12", model_id=5)
    entry = strategy("pre_game_entry")
    units = [DecisionUnit(entry, model, model.ref) for model in (low, high, medium)]
    engine = DecisionEngine(cfg, units, RiskManager(cfg, clock=lambda: NOW), clock=lambda: NOW)
    markets = [market(THIN, event=THIN.rsplit("-", 1)[0], ask_size="10"),
               market(DEEP, event=DEEP.rsplit("-", 1)[0], ask_size="5000"),
               market(MID, event=MID.rsplit("-", 1)[0], ask_size="500")]
    games = {m.event_ticker: game(start_in=3 * 3600) for m in markets}
    result = engine.scan(markets, games, positions=[], balance=D("10000"), now=NOW)
    levels = {ev.market.ticker: ev.level for ev in result.evaluations}
    assert levels == {THIN: "low", DEEP: "high", MID: "medium"}  # the set-up is what the test says it is
    refused = [(r.market.ticker, r.check) for r in result.rejections if r.market is not None]
    return [a.intent.ticker for a in result.approved], refused


def test_composite_gives_the_one_place_left_to_the_deep_confident_market_and_edge_to_the_largest_edge() -> None:
    approved, refused = _scan("composite")
    assert approved == [DEEP]
    assert (THIN, "simultaneous_markets") in refused and (MID, "simultaneous_markets") in refused

    approved, refused = _scan("edge")
    assert approved == [THIN]
    assert (DEEP, "simultaneous_markets") in refused


def test_composite_orders_every_candidate_by_its_score() -> None:
    """Room for all three: the approval order is the score order (DEEP 0.875, THIN 0.50, MID ~0.28)."""
    assert _scan("composite", room=3)[0] == [DEEP, THIN, MID]
    assert _scan("edge", room=3)[0] == [THIN, DEEP, MID]


def test_the_weights_decide_an_edge_only_composite_is_edge_order() -> None:
    only_edge = CompositeWeights(D("1"), D("0"), D("0"))
    assert _scan("composite", only_edge, room=3)[0] == [THIN, DEEP, MID]
    only_depth = CompositeWeights(D("0"), D("1"), D("0"))
    assert _scan("composite", only_depth, room=3)[0] == [DEEP, MID, THIN]


# ------------------------------------------------------------------ the score on hand-computed numbers

def test_the_score_on_three_candidates() -> None:
    """E: edges 0.10 / 0.06 / 0.04 -> 1, 1/3, 0. L: ln(1 + $0) / ln(1 + $9) / ln(1 + $99) -> 0, ln 10 / ln 100 = 1/2,
    1 (an unreported size counts as $0). C: low 0, medium 0.5, high 1.
    Scores: 0.5 + 0 + 0 = 0.50; 0.5/3 + 0.25/2 + 0.25/2 = 5/12; 0 + 0.25 + 0.25 = 0.50."""
    scores = composite_scores([Candidate(D("0.10"), None, "low"), Candidate(D("0.06"), D("9"), "medium"),
                               Candidate(D("0.04"), D("99"), "high")], SPEC)
    assert scores[0] == D("0.50") and scores[2] == D("0.50")  # exact: a tie keeps the markets' order
    assert abs(scores[1] - D(5) / D(12)) < D("1e-20")
    assert all(isinstance(s, Decimal) for s in scores)


def test_a_component_equal_for_every_candidate_scores_one() -> None:
    """Same depth and the same level everywhere: L = C = 1 for all (not 0, and not 0.5 for a shared medium), so
    the score is 0.5 x E + 0.50. A single candidate scores 1."""
    scores = composite_scores([Candidate(D("0.10"), D("500"), "medium"), Candidate(D("0.05"), D("500"), "medium"),
                               Candidate(D("0.10"), D("500"), "medium")], SPEC)
    assert scores == [D("1"), D("0.5"), D("1")]
    assert composite_scores([Candidate(D("0.07"), None, "low")], SPEC) == [D("1")]


def test_an_unknown_confidence_level_counts_as_medium() -> None:
    scores = composite_scores([Candidate(D("0.05"), D("0"), None), Candidate(D("0.05"), D("0"), "low"),
                               Candidate(D("0.05"), D("0"), "high")], CompositeWeights(D("0"), D("0"), D("1")))
    assert scores == [D("0.5"), D("0"), D("1")]


# ------------------------------------------------------------------ configuration

def _load(tmp_path: Path, markets_yaml: str) -> TradingSettings:
    (tmp_path / "markets.yaml").write_text(markets_yaml)
    return TradingSettings.from_config(load_config(tmp_path, use_env=False, use_overrides=False))


def test_the_packaged_weights_are_the_spec_s_and_edge_stays_the_default() -> None:
    assert DEFAULTS.prioritize_by == "edge"
    assert DEFAULTS.composite_weights == SPEC


def test_markets_yaml_selects_composite_and_sets_its_weights(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "prioritization:\n  sort_by: composite\n  composite:\n"
                          "    edge: 0.40\n    liquidity: 0.40\n    confidence: 0.20\n")
    assert cfg.prioritize_by == "composite"
    assert cfg.composite_weights == CompositeWeights(D("0.40"), D("0.40"), D("0.20"))


@pytest.mark.parametrize(("text", "says"), [
    # only edge changed: 0.60 + 0.25 + 0.25; the error names the user's file, not the packaged defaults
    ("prioritization:\n  composite:\n    edge: 0.60\n",
     "prioritization.composite = {'edge': 0.60, 'liquidity': 0.25, 'confidence': 0.25} is invalid"),
    ("prioritization:\n  composite:\n    edge: 0.60\n", "add up to 1.10; each is in [0, 1] and they must sum to 1.00"),
    ("prioritization:\n  composite:\n    edge: 1.5\n",
     "prioritization.composite.edge = 1.5 is invalid: Input should be less than or equal to 1 (allowed: >= 0 and <= 1)"),
    ("prioritization:\n  composite:\n    liquidity: -0.25\n    confidence: 0.75\n",
     "prioritization.composite.liquidity = -0.25 is invalid"),
    ("prioritization:\n  composite:\n    depth: 0.25\n",
     "unknown key 'prioritization.composite.depth' (known keys here: confidence, edge, liquidity)"),
    ("prioritization:\n  sort_by: score\n", "prioritization.sort_by = 'score' is invalid"),
])
def test_bad_weights_are_refused_naming_markets_yaml_and_the_key(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, text)
    message = str(err.value)
    assert message.startswith(str(tmp_path / "markets.yaml")), message
    assert says in message, message


def test_composite_weights_is_still_refused_and_points_to_composite(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, "prioritization:\n  composite_weights:\n    edge: 0.5\n")
    message = str(err.value)
    assert "markets.yaml" in message and "'prioritization.composite_weights' is not used by Precog" in message
    assert "markets.prioritization.composite.edge / liquidity / confidence" in message
