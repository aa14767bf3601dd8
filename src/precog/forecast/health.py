"""Model health from the positions the engine held to settlement (spec 7.3 monitoring; validation track 1).

For every model version (positions.model_id), over its paper and live positions that settled (status
`settled`: held to settlement, partial exits before it included), with the probability the version gave at
entry for the side held and the settled outcome of that side:

* accuracy: share of positions whose forecast was on the right side of 0.5 (a forecast of exactly 0.5 counts
  half; precog.forecast.metrics.score);
* Brier: mean (forecast - outcome)^2;
* calibration error: the n-weighted mean |observed - mean forecast| over the ten forecast deciles (expected
  calibration error), judged only from `calibration_min_positions` on (a small sample's value is mostly noise);
* edge profitability: share of the settled positions whose whole realized P&L is positive, i.e. the share of
  the edges the version traded that paid (not P&L / predicted EV: that is edge realization, validation track 3);
* recent performance: historical Brier / recent Brier, the recent window being the last `recent_window_days`
  (1.0 = as good as before, below 1 = worse). Historical is the version's own settled positions before the
  window when they number at least `min_settled_positions` (like with like: the same trading selection), else
  its recorded validation Brier (`precog forecast evaluate --record`, or shipped). Judged when the window holds
  at least `min_settled_positions` positions.

The entry probability is the stored one, never recomputed: the `edges` row the entry trade points at
(true_win_probability, the side's probability the decision layer traded on), else the entry order's own
`p_side`, else its `p_yes` (the built-in planner's, turned to the side held). Positions with none are counted
as `without_forecast` and left out.

These are statistics, not money: floats (NUMERIC inputs converted explicitly), rounded to 6 places before a
threshold is applied, so a value equal to its threshold is never past it.

`check_models` is what the engine calls after it settles positions: below `min_settled_positions` a version is
"insufficient" and nothing is judged; each metric past its threshold raises one `model_degradation` alert
(medium, category trading) per episode: the episodes are kept in `system_health` (component `forecast`), so a
metric that stays degraded is not alerted again (restarts included) until it has recovered and degraded anew.
Model health never blocks trading by itself.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from precog.alerts.api import AlertRaiser
from precog.forecast.metrics import calibration, expected_calibration_error, score

log = logging.getLogger(__name__)

MODES = ("paper", "live")  # backtests replay the past: their positions are no evidence about live forecasts
ALERT_TYPE = "model_degradation"
COMPONENT = "forecasting"
HEALTH_COMPONENT = "forecast"  # system_health component holding the episodes
_CHECK = "model_health"
_PLACES = Decimal("0.000001")

ACCURACY, CALIBRATION, EDGE_PROFITABILITY, RECENT = (
    "accuracy", "calibration_error", "edge_profitability", "recent_performance")
METRICS = (ACCURACY, CALIBRATION, EDGE_PROFITABILITY, RECENT)
# metric -> (config key under probability_models.health, alert when the value is "above" / "below" it)
_RULES: dict[str, tuple[str, str]] = {
    ACCURACY: ("min_accuracy", "below"),
    CALIBRATION: ("max_calibration_error", "above"),
    EDGE_PROFITABILITY: ("min_edge_profitability", "below"),
    RECENT: ("min_recent_performance", "below"),
}
OK, DEGRADED, INSUFFICIENT = "ok", "degraded", "insufficient"


@dataclass(frozen=True)
class HealthSettings:
    min_settled_positions: int = 30
    calibration_min_positions: int = 300
    recent_window_days: int = 30
    max_calibration_error: Decimal = Decimal("0.08")
    min_edge_profitability: Decimal = Decimal("0.50")
    min_accuracy: Decimal = Decimal("0.52")
    min_recent_performance: Decimal = Decimal("0.85")

    @classmethod
    def from_config(cls, config: Any) -> HealthSettings:
        """From a Config (probability_models.health, validated by the schema when loaded)."""
        h = config.get("probability_models.health")
        return cls(int(h["min_settled_positions"]), int(h["calibration_min_positions"]),
                   int(h["recent_window_days"]), Decimal(str(h["max_calibration_error"])),
                   Decimal(str(h["min_edge_profitability"])), Decimal(str(h["min_accuracy"])),
                   Decimal(str(h["min_recent_performance"])))

    def threshold(self, metric: str) -> Decimal:
        return Decimal(getattr(self, _RULES[metric][0]))

    def as_dict(self) -> dict[str, Any]:
        return {k: (float(v) if isinstance(v, Decimal) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class SettledForecast:
    """One position held to settlement: the stored entry forecast of the side held and what the side paid."""

    position_id: int
    p_side: float
    outcome: float  # 1 won, 0 lost (a fraction for a scalar settlement)
    realized_pnl: Decimal
    settled_at: datetime
    source: str  # edge | order


@dataclass(frozen=True)
class MetricCheck:
    metric: str
    value: float | None
    threshold: Decimal
    status: str  # ok | degraded | insufficient
    n: int

    @property
    def config_key(self) -> str:
        return f"probability_models.health.{_RULES[self.metric][0]}"

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "threshold": float(self.threshold), "status": self.status, "n": self.n,
                "config_key": self.config_key}


@dataclass(frozen=True)
class ModelHealth:
    model_id: int
    ref: str
    n: int
    without_forecast: int
    accuracy: float | None
    brier: float | None
    calibration_error: float | None
    edge_profitability: float | None
    realized_pnl: Decimal
    recent_n: int
    recent_brier: float | None
    historical_brier: float | None
    historical_source: str | None  # settled_before_window | validation | None
    recent_ratio: float | None
    checks: dict[str, MetricCheck] = field(default_factory=dict)

    @property
    def status(self) -> str:
        if self.n == 0 or all(c.status == INSUFFICIENT for c in self.checks.values()):
            return INSUFFICIENT
        return DEGRADED if self.degraded else OK

    @property
    def degraded(self) -> list[str]:
        return [m for m, c in self.checks.items() if c.status == DEGRADED]

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.ref, "model_id": self.model_id, "status": self.status, "n": self.n,
                "without_forecast": self.without_forecast, "accuracy": self.accuracy, "brier": self.brier,
                "calibration_error": self.calibration_error, "edge_profitability": self.edge_profitability,
                "realized_pnl": str(self.realized_pnl),
                "recent": {"n": self.recent_n, "brier": self.recent_brier, "historical_brier": self.historical_brier,
                           "historical_source": self.historical_source, "ratio": self.recent_ratio},
                "checks": {m: c.as_dict() for m, c in self.checks.items()}}


# ------------------------------------------------------------------------------------------------ reading
_SETTLED_SQL = """
SELECT p.position_id, p.model_id, lower(p.side) AS side, p.realized_pnl, s.settlement_value,
       s.settlement_timestamp, e.true_win_probability AS edge_p, o.metadata->>'p_side' AS order_p_side,
       o.metadata->>'p_yes' AS order_p_yes
FROM positions p
JOIN LATERAL (SELECT settlement_value, settlement_timestamp FROM settlements s
              WHERE s.position_id = p.position_id ORDER BY s.settlement_id LIMIT 1) s ON TRUE
LEFT JOIN LATERAL (SELECT t.edge_id, (t.trade_metadata->>'order_db_id')::bigint AS order_db_id FROM trades t
                   WHERE t.position_id = p.position_id AND t.action = 'buy'
                   ORDER BY t.execution_time, t.trade_id LIMIT 1) t ON TRUE
LEFT JOIN edges e ON e.id = t.edge_id
LEFT JOIN orders o ON o.id = t.order_db_id
WHERE p.row_current_ind AND p.status = 'settled' AND p.mode = ANY(%s) AND p.model_id IS NOT NULL
  AND lower(p.side) IN ('yes', 'no') AND (%s::int[] IS NULL OR p.model_id = ANY(%s))
ORDER BY s.settlement_timestamp, p.position_id
"""


def _entry_probability(row: Mapping[str, Any]) -> tuple[float, str] | None:
    """The stored probability of the side held at entry, and where it came from."""
    if row["edge_p"] is not None:
        return float(row["edge_p"]), "edge"
    try:
        if row["order_p_side"]:
            return float(Decimal(row["order_p_side"])), "order"
        if row["order_p_yes"]:
            p_yes = Decimal(row["order_p_yes"])
            return float(p_yes if row["side"] == "yes" else 1 - p_yes), "order"
    except ArithmeticError:  # a malformed stored value is no forecast
        log.warning("position %s: unreadable entry probability in its order's metadata", row["position_id"])
    return None


def settled_forecasts(conn: psycopg.Connection[Any], model_ids: Collection[int] | None = None
                      ) -> tuple[dict[int, list[SettledForecast]], dict[int, int]]:
    """Per model version: its settled paper/live positions with their entry forecast (oldest settlement first),
    and how many settled positions had no stored forecast."""
    ids = None if model_ids is None else sorted(model_ids)
    out: dict[int, list[SettledForecast]] = {}
    missing: dict[int, int] = {}
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_SETTLED_SQL, (list(MODES), ids, ids))
        for row in cur.fetchall():
            model_id = int(row["model_id"])
            out.setdefault(model_id, [])
            found = _entry_probability(row)
            if found is None:
                missing[model_id] = missing.get(model_id, 0) + 1
                continue
            value = Decimal(row["settlement_value"])
            outcome = float(value if row["side"] == "yes" else 1 - value)
            out[model_id].append(SettledForecast(int(row["position_id"]), found[0], outcome,
                                                 Decimal(row["realized_pnl"]), row["settlement_timestamp"], found[1]))
    return out, missing


def _models(conn: psycopg.Connection[Any], model_ids: Collection[int]) -> dict[int, tuple[str, float | None]]:
    """model_id -> (NAME@VERSION, recorded validation Brier)."""
    rows = conn.execute("SELECT model_id, model_name || '@' || model_version, validation_brier FROM probability_models "
                        "WHERE model_id = ANY(%s)", (sorted(model_ids),)).fetchall()
    return {int(r[0]): (str(r[1]), None if r[2] is None else float(r[2])) for r in rows}


# ------------------------------------------------------------------------------------------------ statistics
def _round(x: float | None) -> float | None:
    if x is None or x != x:
        return None
    return float(Decimal(repr(float(x))).quantize(_PLACES))


def _brier(rows: Sequence[SettledForecast]) -> float | None:
    return _round(score([r.p_side for r in rows], [r.outcome for r in rows]).brier) if rows else None


def _judge(metric: str, value: float | None, settings: HealthSettings, n: int, enough: bool) -> MetricCheck:
    threshold = settings.threshold(metric)
    if not enough or value is None:
        return MetricCheck(metric, value, threshold, INSUFFICIENT, n)
    v = Decimal(repr(value))
    past = v > threshold if _RULES[metric][1] == "above" else v < threshold
    return MetricCheck(metric, value, threshold, DEGRADED if past else OK, n)


def assess(model_id: int, ref: str, rows: Sequence[SettledForecast], settings: HealthSettings, now: datetime, *,
           validation_brier: float | None = None, without_forecast: int = 0) -> ModelHealth:
    """The health of one version from its settled forecasts (any order)."""
    n = len(rows)
    enough = n >= settings.min_settled_positions
    p = [r.p_side for r in rows]
    y = [r.outcome for r in rows]
    s = score(p, y) if rows else None
    cal = _round(expected_calibration_error(calibration(p, y))) if rows else None
    profitable = _round(sum(1 for r in rows if r.realized_pnl > 0) / n) if rows else None
    start = now - timedelta(days=settings.recent_window_days)
    recent = [r for r in rows if r.settled_at >= start]
    before = [r for r in rows if r.settled_at < start]
    recent_brier = _brier(recent)
    if len(before) >= settings.min_settled_positions:
        hist, source = _brier(before), "settled_before_window"
    elif validation_brier is not None and validation_brier > 0:
        hist, source = _round(validation_brier), "validation"
    else:
        hist, source = None, None
    ratio = None
    if hist is not None and recent_brier is not None and recent_brier > 0:
        ratio = _round(hist / recent_brier)
    recent_enough = enough and len(recent) >= settings.min_settled_positions and hist is not None
    checks = {
        ACCURACY: _judge(ACCURACY, _round(s.accuracy) if s else None, settings, n, enough),
        CALIBRATION: _judge(CALIBRATION, cal, settings, n, enough and n >= settings.calibration_min_positions),
        EDGE_PROFITABILITY: _judge(EDGE_PROFITABILITY, profitable, settings, n, enough),
        RECENT: _judge(RECENT, ratio, settings, len(recent), recent_enough),
    }
    if recent_enough and recent_brier == 0:  # a perfect recent window: no ratio, and no degradation
        checks[RECENT] = MetricCheck(RECENT, None, settings.threshold(RECENT), OK, len(recent))
    return ModelHealth(model_id, ref, n, without_forecast, _round(s.accuracy) if s else None,
                       _round(s.brier) if s else None, cal, profitable,
                       sum((r.realized_pnl for r in rows), Decimal(0)), len(recent), recent_brier, hist, source,
                       ratio, checks)


def health_report(conn: psycopg.Connection[Any], settings: HealthSettings, now: datetime,
                  model_ids: Collection[int] | None = None) -> list[ModelHealth]:
    """Every version with settled paper/live positions (or exactly `model_ids`, with none too), by ref."""
    found, missing = settled_forecasts(conn, model_ids)
    ids = set(found) | set(missing) | set(model_ids or ())
    models = _models(conn, ids)
    out = [assess(mid, models[mid][0], found.get(mid, []), settings, now, validation_brier=models[mid][1],
                  without_forecast=missing.get(mid, 0)) for mid in ids if mid in models]
    return sorted(out, key=lambda h: h.ref)


# ------------------------------------------------------------------------------------------------ alerting
def _message(h: ModelHealth, c: MetricCheck) -> str:
    word = {ACCURACY: "accuracy", CALIBRATION: "calibration error", EDGE_PROFITABILITY: "edge profitability",
            RECENT: "recent performance (historical Brier / recent Brier)"}[c.metric]
    side = "above" if _RULES[c.metric][1] == "above" else "below"
    scope = (f"the {c.n} positions settled in the recent window (recent Brier {h.recent_brier}, historical "
             f"Brier {h.historical_brier} from {h.historical_source})" if c.metric == RECENT
             else f"{c.n} positions held to settlement")
    return (f"{h.ref}: {word} {c.value} on {scope} is {side} {c.threshold} ({c.config_key}); "
            "trading is not blocked by this: review the version")


def _details(h: ModelHealth, c: MetricCheck, episode: int) -> dict[str, Any]:
    return {"model": h.ref, "model_id": h.model_id, "metric": c.metric, "value": c.value,
            "threshold": str(c.threshold), "config_key": c.config_key, "sample_size": c.n, "settled_positions": h.n,
            "episode": episode, "accuracy": h.accuracy, "brier": h.brier, "calibration_error": h.calibration_error,
            "edge_profitability": h.edge_profitability, "recent_brier": h.recent_brier,
            "historical_brier": h.historical_brier, "historical_source": h.historical_source,
            "recent_ratio": h.recent_ratio}


def _last_state(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    row = conn.execute(
        "SELECT details FROM system_health WHERE component = %s AND details->>'check' = %s "
        "ORDER BY health_id DESC LIMIT 1", (HEALTH_COMPONENT, _CHECK)).fetchone()
    models = (row[0] or {}).get("models") if row else None
    return dict(models) if isinstance(models, dict) else {}


def check_models(conn: psycopg.Connection[Any], settings: HealthSettings, alerts: AlertRaiser, now: datetime,
                 model_ids: Collection[int] | None = None) -> list[ModelHealth]:
    """Re-check `model_ids` (None: every version with settled positions) and raise `model_degradation` once per
    episode for each metric past its threshold. The episodes and the versions' status are written as one
    `system_health` row (component forecast) carrying every version checked so far. An alert is raised before
    its episode is recorded (in the same transaction): a failure in between raises it again, never loses it."""
    report = health_report(conn, settings, now, model_ids)
    if not report:
        return report
    raised = 0
    with conn.transaction():
        # two engines settling at once: one reads the other's episodes, never both open the same one
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('precog.forecast.health'))")
        state = _last_state(conn)
        for h in report:
            prev = state.get(str(h.model_id)) or {}
            degraded = set(prev.get("degraded") or [])
            episodes = {str(k): int(v) for k, v in (prev.get("episodes") or {}).items()}
            for metric, c in h.checks.items():
                if c.status == OK:
                    degraded.discard(metric)  # recovered: the next degradation is a new episode
                elif c.status == DEGRADED and metric not in degraded:
                    episodes[metric] = episodes.get(metric, 0) + 1
                    alerts.raise_alert(ALERT_TYPE, "medium", COMPONENT, _message(h, c),
                                       _details(h, c, episodes[metric]), source_table="probability_models",
                                       source_id=h.model_id,
                                       dedup_key=f"model_health:{h.model_id}:{metric}:{episodes[metric]}",
                                       category="trading")
                    degraded.add(metric)
                    raised += 1
                # insufficient: unknown is not recovered, an open episode stays open
            state[str(h.model_id)] = {"ref": h.ref, "status": h.status, "n": h.n, "checked_at": now.isoformat(),
                                      "degraded": sorted(degraded), "episodes": episodes,
                                      "values": {m: c.value for m, c in h.checks.items()}}
        status = "degraded" if any(v.get("degraded") for v in state.values()) else "healthy"
        conn.execute("INSERT INTO system_health (component, status, details, alert_sent) VALUES (%s, %s, %s, %s)",
                     (HEALTH_COMPONENT, status, Jsonb({"check": _CHECK, "models": state}), raised > 0))
    return report
