"""markets.yaml `prioritization.sort_by: composite`: the score a decision scan orders its candidates by.

score = w_edge x E + w_liquidity x L + w_confidence x C, each component in [0, 1] and relative to the
candidates of one scan (the spec's "composite 0.50 edge / 0.25 liquidity / 0.25 confidence" names the
weights only; the components are Precog's, docs/trading.md "Which candidate gets the room left"):

- E: the signal's side edge, min-max scaled over the candidates;
- L: ln(1 + dollars offered at the entry price) (contracts at the ask of the signal's side x that price),
  min-max scaled; the logarithm keeps one very deep book from flattening every other difference; an unreported
  size counts as nothing offered;
- C: the forecast's confidence level: high 1, medium 0.5, low 0 (an unknown level 0.5), not rescaled;
- a component equal across all candidates (max == min) scores 1 for every one: it does not discriminate.

Decimal throughout (a ranking score, but the trading path stays free of binary floats); nothing is rounded,
and Decimal comparison is exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

_ZERO = Decimal(0)
_ONE = Decimal(1)
_HALF = Decimal("0.5")
CONFIDENCE_SCORES: dict[str, Decimal] = {"high": _ONE, "medium": _HALF, "low": _ZERO}


@dataclass(frozen=True, slots=True)
class CompositeWeights:
    """markets.yaml prioritization.composite (each in [0, 1], summing to 1; the schema checks both)."""

    edge: Decimal = Decimal("0.50")
    liquidity: Decimal = Decimal("0.25")
    confidence: Decimal = Decimal("0.25")


@dataclass(frozen=True, slots=True)
class Candidate:
    """What the score reads of one candidate entry: its side edge, the dollars offered at the price it would
    pay (None: the venue did not report the size) and its forecast's confidence level."""

    edge: Decimal
    dollars_offered: Decimal | None
    confidence_level: str | None


def liquidity_value(dollars_offered: Decimal | None) -> Decimal:
    """ln(1 + dollars offered at the entry price): an entry's liquidity before scaling. Unknown size: 0."""
    if dollars_offered is None or dollars_offered <= _ZERO:
        return _ZERO
    return (_ONE + dollars_offered).ln()


def confidence_score(level: str | None) -> Decimal:
    """high 1, medium 0.5, low 0; a level the table does not know 0.5 (neither rewarded nor penalized)."""
    return CONFIDENCE_SCORES.get(level or "", _HALF)


def _scaled(values: Sequence[Decimal]) -> list[Decimal]:
    """Min-max scaling to [0, 1]; all equal -> 1 each (the component does not tell the candidates apart)."""
    low, high = min(values), max(values)
    if high == low:
        return [_ONE] * len(values)
    span = high - low
    return [(v - low) / span for v in values]


def _levels(values: Sequence[Decimal]) -> list[Decimal]:
    """Confidence is already on [0, 1] (not rescaled); all equal -> 1 each, as for the scaled components."""
    return [_ONE] * len(values) if min(values) == max(values) else list(values)


def composite_scores(candidates: Sequence[Candidate], weights: CompositeWeights) -> list[Decimal]:
    """The composite score of each candidate (same order), relative to this set of candidates."""
    if not candidates:
        return []
    edge = _scaled([c.edge for c in candidates])
    liquidity = _scaled([liquidity_value(c.dollars_offered) for c in candidates])
    confidence = _levels([confidence_score(c.confidence_level) for c in candidates])
    return [weights.edge * e + weights.liquidity * q + weights.confidence * c
            for e, q, c in zip(edge, liquidity, confidence, strict=True)]
