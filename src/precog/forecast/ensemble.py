"""Ensemble: weighted mean of component forecasts, confidence from agreement and sample size, shrinkage.

    p = sum(w_i * p_i) / sum(w_i)       over the components that apply to the state
    p' = 0.5 + (p - 0.5) * (1 - shrinkage)                               (spec 5.1, shrinkage 0.10)

Confidence (spec 5.1 edges.confidence_level): the disagreement of the components and the smallest sample
size behind any of them. Disagreement = 2 * sum(w_i * |p_i - p|) with normalised weights: for two equally
weighted components it is |p1 - p2|; a component with a small weight moves it little.
    high:   spread <= 0.05 and sample >= 500
    medium: spread <= 0.10 and sample >= 200
    low:    otherwise
    score = max(0, 1 - spread / 0.20) * min(1, sample / 500)      (in [0, 1]; the Phase-4 gate is > 0.70)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Confidence = Literal["high", "medium", "low"]


@dataclass(frozen=True, slots=True)
class Component:
    probability: float  # P(home team wins)
    weight: float
    sample_size: int


@dataclass(frozen=True, slots=True)
class Combined:
    probability: float  # after shrinkage
    raw_probability: float  # before shrinkage
    spread: float  # weighted disagreement between components
    sample_size: int
    confidence: Confidence
    confidence_score: float
    weights: dict[str, float]  # normalised weights actually used


def shrink(p: float, shrinkage: float) -> float:
    return 0.5 + (p - 0.5) * (1.0 - shrinkage)


def confidence_of(spread: float, sample_size: int) -> tuple[Confidence, float]:
    if spread <= 0.05 and sample_size >= 500:
        level: Confidence = "high"
    elif spread <= 0.10 and sample_size >= 200:
        level = "medium"
    else:
        level = "low"
    score = max(0.0, 1.0 - spread / 0.20) * min(1.0, sample_size / 500.0)
    return level, score


def combine(components: Mapping[str, Component], shrinkage: float) -> Combined:
    used = {k: c for k, c in components.items() if c.weight > 0}
    if not used:
        raise ValueError("no component with a positive weight applies")
    for name, c in used.items():
        if not 0.0 <= c.probability <= 1.0:
            raise ValueError(f"component {name} gave {c.probability}, not a probability")
    total = sum(c.weight for c in used.values())
    raw = sum(c.weight * c.probability for c in used.values()) / total
    spread = 2.0 * sum(c.weight / total * abs(c.probability - raw) for c in used.values())
    sample = min(c.sample_size for c in used.values())
    level, score = confidence_of(spread, sample)
    return Combined(shrink(raw, shrinkage), raw, spread, sample, level, score,
                    {k: c.weight / total for k, c in used.items()})
