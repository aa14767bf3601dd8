"""Forecast scores: Brier, log loss, accuracy, calibration by decile, reliability diagram."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

LOG_LOSS_EPS = 1e-15
# Issue 6 target: a decile with at least this many forecasts must be within CALIBRATION_TOLERANCE.
CALIBRATION_MIN_N = 500
CALIBRATION_TOLERANCE = 0.03


@dataclass(frozen=True, slots=True)
class Scores:
    n: int
    brier: float
    log_loss: float
    accuracy: float  # share of decided outcomes (not ties) where the favourite (p > 0.5) won

    def as_dict(self) -> dict[str, float | int]:
        return {"n": self.n, "brier": self.brier, "log_loss": self.log_loss, "accuracy": self.accuracy}


@dataclass(frozen=True, slots=True)
class CalibrationBin:
    lower: float
    upper: float
    n: int
    mean_forecast: float
    observed: float

    @property
    def gap(self) -> float:
        return self.observed - self.mean_forecast

    @property
    def within_target(self) -> bool | None:
        """True/False for bins with n >= 500 (the target applies), None for smaller bins."""
        if self.n < CALIBRATION_MIN_N:
            return None
        return abs(self.gap) <= CALIBRATION_TOLERANCE


def _arrays(p: ArrayLike, y: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    pa = np.asarray(p, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64)
    if pa.shape != ya.shape:
        raise ValueError(f"forecasts ({pa.shape}) and outcomes ({ya.shape}) differ in length")
    return pa, ya


def score(p: ArrayLike, y: ArrayLike) -> Scores:
    """Scores of forecasts `p` of outcomes `y` (1 win, 0 loss, 0.5 tie)."""
    pa, ya = _arrays(p, y)
    n = int(pa.size)
    if n == 0:
        return Scores(0, float("nan"), float("nan"), float("nan"))
    brier = float(np.mean((pa - ya) ** 2))
    pc = np.clip(pa, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
    log_loss = float(-np.mean(ya * np.log(pc) + (1 - ya) * np.log(1 - pc)))
    decided = ya != 0.5
    if decided.any():
        hits = (pa[decided] > 0.5) == (ya[decided] == 1.0)
        # a forecast of exactly 0.5 picks nobody: half a hit
        hits = np.where(pa[decided] == 0.5, 0.5, hits.astype(np.float64))
        accuracy = float(np.mean(hits))
    else:
        accuracy = float("nan")
    return Scores(n, brier, log_loss, accuracy)


def calibration(p: ArrayLike, y: ArrayLike, bins: int = 10) -> list[CalibrationBin]:
    """Calibration table by forecast decile [0, 0.1), [0.1, 0.2) ... [0.9, 1.0]."""
    pa, ya = _arrays(p, y)
    idx = np.minimum((pa * bins).astype(np.int64), bins - 1)
    out = []
    for b in range(bins):
        mask = idx == b
        n = int(mask.sum())
        out.append(CalibrationBin(b / bins, (b + 1) / bins, n,
                                  float(pa[mask].mean()) if n else float("nan"),
                                  float(ya[mask].mean()) if n else float("nan")))
    return out


def expected_calibration_error(table: Sequence[CalibrationBin]) -> float:
    """n-weighted mean |observed - mean forecast| over the table's bins (NaN for an empty table)."""
    n = sum(b.n for b in table)
    return sum(b.n * abs(b.gap) for b in table if b.n) / n if n else float("nan")


def max_calibration_error(table: Sequence[CalibrationBin], min_n: int = 1) -> float:
    gaps = [abs(b.gap) for b in table if b.n >= min_n]
    return max(gaps) if gaps else float("nan")


def reliability_diagram(path: Path, series: Mapping[str, tuple[ArrayLike, ArrayLike]], title: str,
                        bins: int = 10) -> Path:
    """Write a reliability diagram PNG: observed frequency against mean forecast per decile, per series."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, hist) = plt.subplots(2, 1, figsize=(6.5, 7.5), gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
    for label, (p, y) in series.items():
        table = [b for b in calibration(p, y, bins) if b.n > 0]
        ax.plot([b.mean_forecast for b in table], [b.observed for b in table], marker="o", label=label)
        hist.hist(np.asarray(p, dtype=np.float64), bins=bins, range=(0, 1), histtype="step", label=label)
    ax.set_ylabel("observed frequency")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize="small")
    ax.grid(alpha=0.3)
    hist.set_xlabel("forecast probability")
    hist.set_ylabel("forecasts")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
