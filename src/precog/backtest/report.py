"""Backtest summary (JSON) and report (self-contained HTML, charts as embedded PNG from matplotlib Agg).

Money figures are Decimal throughout and written as strings. Ratios that are statistics (Sharpe, hit
rate, Brier, calibration) are floats.

What an entry was worth is measured by when it was made (see ENTRY_VALUE_DEFINITIONS): a pre-game entry
against the closing line (the last price before the game started), an in-game entry by the price drift over a
fixed horizon after it. An in-game market's last price has converged to 0 or 1 with the game, so measuring
against it would measure the result, not the price paid.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from precog.backtest import guard
from precog.backtest.models import GameInfo
from precog.domain.money import ZERO, fmt_money, q4

DRIFT_HORIZON_MS = 15 * 60_000
DRIFT_KEY = "in_game_drift_15m_per_contract"
ENTRY_VALUE_DEFINITIONS = {
    "clv_per_contract": "closing-line value of pre-game entries: (the side's closing line - entry price) per "
                        "contract, weighted by contracts; the closing line is the market's last fair value quoted "
                        "before the game started (its first in-game state; a pre-game-only market: kickoff). "
                        "In-game entries have no closing line and are not in it.",
    DRIFT_KEY: "price drift after in-game entries: (the side's fair value 15 minutes of simulated time after "
               "entry - entry price) per contract, weighted by contracts. Entries whose 15 minutes run past the "
               "market's last quote are excluded (the price there converges on the result) and counted in "
               "in_game_drift_excluded_contracts.",
    "entry_value_unmeasured_contracts": "contracts of entries in a market whose game start is not known (a "
                                        "recording whose scoreboard never linked the market): neither measure "
                                        "applies.",
}

# ---------------------------------------------------------------------------------------------- summary


def _s(x: Decimal | None) -> str | None:
    return None if x is None else str(x)


def _positions(conn: psycopg.Connection[Any], run_ids: list[int]) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT p.position_id, p.market_id, p.side, p.status, p.initial_quantity, p.entry_price, p.realized_pnl, "
            "p.fees, p.exit_reason, p.entry_time, p.exit_time, p.position_metadata->>'entry_edge' AS entry_edge, "
            "(p.position_metadata->>'run_id')::bigint AS run_id, me.method_name || '@' || me.method_version AS method, "
            "s.strategy_name || '@' || s.strategy_version AS strategy, m.model_name || '@' || m.model_version AS model "
            "FROM positions p LEFT JOIN methods me ON me.method_id = p.method_id "
            "LEFT JOIN strategies s ON s.strategy_id = p.strategy_id "
            "LEFT JOIN probability_models m ON m.model_id = p.model_id "
            "WHERE p.row_current_ind AND p.mode = 'backtest' AND (p.position_metadata->>'run_id')::bigint = ANY(%s) "
            # entries at one simulated instant in several lanes: in lane (run) order, as when the lanes run one
            # after another, so a run whose lanes ran in parallel (`--jobs`) lists its trades the same way
            "ORDER BY p.entry_time, array_position(%s::bigint[], (p.position_metadata->>'run_id')::bigint), "
            "p.position_id", (run_ids, run_ids))
        return list(cur.fetchall())


def _trade_stats(conn: psycopg.Connection[Any], run_ids: list[int]) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT count(*) AS fills, coalesce(sum(fees), 0) AS fees, "
                    "count(*) FILTER (WHERE action = 'buy') AS buys, count(*) FILTER (WHERE action = 'sell') AS sells, "
                    "coalesce(sum(quantity), 0) AS contracts FROM trades WHERE mode = 'backtest' AND "
                    "(trade_metadata->>'run_id')::bigint = ANY(%s)", (run_ids,))
        row = cur.fetchone()
    assert row is not None
    return dict(row)


def _exits(conn: psycopg.Connection[Any], run_ids: list[int]) -> list[dict[str, Any]]:
    from precog.trading.attribution import exits_by_reason

    merged: dict[str, dict[str, Any]] = {}
    for rid in run_ids:
        for r in exits_by_reason(conn, rid):
            m = merged.setdefault(r["reason"], {"reason": r["reason"], "priority": r["priority"], "exits": 0,
                                                "contracts": 0, "realized_pnl": ZERO})
            m["exits"] += int(r["exits"])
            m["contracts"] += int(r["contracts"] or 0)
            m["realized_pnl"] += r["realized_pnl"] or ZERO
    return [{**v, "realized_pnl": str(v["realized_pnl"])} for v in sorted(merged.values(), key=lambda v: -v["exits"])]


# ------------------------------------------------------------------------------------------ entry value


@dataclass(frozen=True)
class PricePath:
    """One market's quoted fair values (P(YES)) in time order, and when its game started (None: unknown)."""

    times: list[int]
    fairs: list[Decimal]
    start_ms: int | None

    def closing_line(self) -> Decimal | None:
        """The last fair value quoted before the game started (None: no pre-game quote, or start unknown)."""
        if self.start_ms is None:
            return None
        i = bisect_left(self.times, self.start_ms)
        return self.fairs[i - 1] if i else None

    def fair_at(self, ms: int) -> Decimal | None:
        """The fair value quoted last at or before `ms` (None: past the last quote, or before the first)."""
        if not self.times or ms > self.times[-1]:
            return None
        i = bisect_right(self.times, ms)
        return self.fairs[i - 1] if i else None


def price_path(game: GameInfo) -> PricePath:
    """A market's quoted fair values as the run's world saw them, and when its game started: its first in-game
    state; without states, a market that trades pre-game only starts at its kickoff, any other's start is
    unknown."""
    start = game.started_ms
    if start is None and not game.schedule.get("in_game", True):
        start = int(game.schedule["kickoff_ms"])
    return PricePath(game.history_ms, game.history, start)


@dataclass(frozen=True)
class WorldView:
    """What the report reads of a window's simulated world: each market's price path and, per model, the
    calibration pairs of its forecasts. The world itself (its exchange, books and models) stays in the process
    that replayed it; this view is plain data, so a lane replayed in another process (`--jobs`) hands back the
    very view an in-process window builds, and the two reports cannot drift."""

    paths: dict[str, PricePath]  # ticker -> its quoted fair values and game start
    calibration: dict[str, tuple[list[float], list[float], list[float]]]  # `BacktestWorld.calibration_pairs`

    @classmethod
    def of(cls, world: Any) -> WorldView:
        """The view of a `BacktestWorld` once its window has been replayed."""
        return cls({ticker: price_path(g) for ticker, g in world.games.items()}, world.calibration_pairs())


def _skipped_messages(outcomes: list[Any]) -> int:
    """Frames of the data that did not parse, over the run's windows: each lane reads the same windows, so the
    first lane's windows count them all (whichever process read them)."""
    if not outcomes:
        return 0
    lane = outcomes[0].lane
    return sum(int(o.engine_stats.get("skipped_messages", 0)) for o in outcomes if o.lane == lane)


def price_paths(outcomes: list[Any]) -> dict[str, PricePath]:
    """The price path of every market each run replayed, keyed "engine run:ticker" (from the run's world view:
    the data is not read again)."""
    return {f"{o.run_id}:{ticker}": path for o in outcomes for ticker, path in o.world.paths.items()}


@dataclass(frozen=True)
class EntryValue:
    phase: str  # pre_game | in_game | unknown (the market's game start is not known)
    clv: Decimal | None = None  # per contract, pre-game entries
    drift: Decimal | None = None  # per contract, in-game entries measured over the horizon


def entry_value(p: dict[str, Any], paths: dict[str, PricePath]) -> EntryValue:
    path = paths.get(f"{p['run_id']}:{p['market_id']}")
    if path is None or path.start_ms is None or p["entry_time"] is None:
        return EntryValue("unknown")
    entry_ms = round(p["entry_time"].timestamp() * 1000)

    def side(fair: Decimal) -> Decimal:
        return fair if p["side"] == "yes" else 1 - fair

    if entry_ms < path.start_ms:
        close = path.closing_line()
        return EntryValue("pre_game", clv=None if close is None else side(close) - p["entry_price"])
    later = path.fair_at(entry_ms + DRIFT_HORIZON_MS)
    return EntryValue("in_game", drift=None if later is None else side(later) - p["entry_price"])


def entry_value_stats(positions: list[dict[str, Any]], paths: dict[str, PricePath]) -> dict[str, Any]:
    clv = drift = ZERO
    clv_n = drift_n = excluded = unmeasured = 0
    for p in positions:
        v = entry_value(p, paths)
        qty = p["initial_quantity"]
        if v.clv is not None:
            clv += v.clv * qty
            clv_n += qty
        elif v.drift is not None:
            drift += v.drift * qty
            drift_n += qty
        elif v.phase == "in_game":
            excluded += qty
        else:  # no game start known (a recording's market no scoreboard linked), so neither measure applies
            unmeasured += qty
    return {"clv_per_contract": str(q4(clv / clv_n)) if clv_n else None, "clv_contracts": clv_n,
            DRIFT_KEY: str(q4(drift / drift_n)) if drift_n else None, "in_game_drift_contracts": drift_n,
            "in_game_drift_excluded_contracts": excluded, "entry_value_unmeasured_contracts": unmeasured}


# ---------------------------------------------------------------------------------------------- groups


def _group(positions: list[dict[str, Any]], key: str, paths: dict[str, PricePath]) -> list[dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in positions:
        groups[p[key] or "unknown"].append(p)
    return [{key: k, **_stats(v, paths)} for k, v in sorted(groups.items())]


def _with_all(rows: list[dict[str, Any]], key: str, names: list[str], paths: dict[str, PricePath]
              ) -> list[dict[str, Any]]:
    """Every method that ran gets a row, also those that never traded (an A/B table needs both sides)."""
    have = {r[key] for r in rows}
    return rows + [{key: n, **_stats([], paths)} for n in names if n not in have]


def _stats(positions: list[dict[str, Any]], paths: dict[str, PricePath]) -> dict[str, Any]:
    done = [p for p in positions if p["status"] != "open"]
    pnl = sum((p["realized_pnl"] or ZERO for p in positions), ZERO)
    fees = sum((p["fees"] or ZERO for p in positions), ZERO)
    winners = sum(1 for p in done if (p["realized_pnl"] or ZERO) > 0)
    ev = sum((Decimal(p["entry_edge"]) * p["initial_quantity"] for p in done if p["entry_edge"]), ZERO)
    return {
        "positions": len(positions), "closed": len(done), "winners": winners,
        "hit_rate": round(winners / len(done), 4) if done else None,
        "pnl": str(pnl), "fees": str(fees), "predicted_ev": str(q4(ev)),
        "edge_realization": round(float(pnl / ev), 4) if ev > 0 else None,
        **entry_value_stats(positions, paths),
    }


def _trade_row(p: dict[str, Any], paths: dict[str, PricePath]) -> dict[str, Any]:
    v = entry_value(p, paths)
    return {"position_id": p["position_id"], "market": p["market_id"], "side": p["side"], "method": p["method"],
            "quantity": p["initial_quantity"], "entry_price": str(p["entry_price"]),
            "entry_time": p["entry_time"].isoformat() if p["entry_time"] else None, "entry_phase": v.phase,
            "clv": _s(None if v.clv is None else q4(v.clv)),
            "drift_15m": _s(None if v.drift is None else q4(v.drift)),
            "status": p["status"],
            "exit_reason": p["exit_reason"] or ("settlement" if p["status"] == "settled" else None),
            "pnl": str(p["realized_pnl"]), "fees": str(p["fees"]), "entry_edge": p["entry_edge"]}


def _lane_curves(outcomes: list[Any]) -> dict[str, list[tuple[int, Decimal]]]:
    """Per A/B lane, one curve across its windows (each window starts with what the previous ended with)."""
    curves: dict[str, list[tuple[int, Decimal]]] = {}
    for o in outcomes:
        curves.setdefault(" + ".join(o.lane_methods) or "all", []).extend(o.equity)
    return curves


def _combined(curves: dict[str, list[tuple[int, Decimal]]]) -> list[tuple[int, Decimal]]:
    """The sum of the lanes' equity at every time any of them moved (each lane holds its last value)."""
    if len(curves) == 1:
        return next(iter(curves.values()))
    points = sorted({ts for c in curves.values() for ts, _ in c})
    out = []
    idx = dict.fromkeys(curves, -1)
    for ts in points:
        total = ZERO
        for name, c in curves.items():
            i = idx[name]
            while i + 1 < len(c) and c[i + 1][0] <= ts:
                i += 1
            idx[name] = i
            total += c[i][1] if i >= 0 else c[0][1]
        out.append((ts, total))
    return out


def _drawdown(curve: list[tuple[int, Decimal]]) -> tuple[list[tuple[int, Decimal]], Decimal, Decimal]:
    peak = None
    dd: list[tuple[int, Decimal]] = []
    worst = ZERO
    worst_pct = ZERO
    for ts, eq in curve:
        peak = eq if peak is None or eq > peak else peak
        d = peak - eq
        dd.append((ts, -d))
        if d > worst:
            worst = d
            worst_pct = q4(d / peak) if peak > 0 else ZERO
    return dd, worst, worst_pct


def _sharpe(curve: list[tuple[int, Decimal]]) -> float | None:
    """Annualized Sharpe of daily equity returns over every calendar day (UTC) from the first sample to the last
    (zero risk-free rate). A day without a sample keeps the previous day's equity: a return of 0, not a day left
    out. Leaving quiet days out (games are played on a few days a week) would overstate the mean daily return
    against its spread and so the √365-annualized ratio."""
    by_day: dict[date, Decimal] = {}
    for ts, eq in curve:
        by_day[datetime.fromtimestamp(ts / 1000, tz=UTC).date()] = eq
    if len(by_day) < 2:
        return None
    days = sorted(by_day)
    vals: list[float] = []
    day, last = days[0], by_day[days[0]]
    while day <= days[-1]:
        last = by_day.get(day, last)
        vals.append(float(last))
        day += timedelta(days=1)
    rets = [(b - a) / a for a, b in zip(vals, vals[1:], strict=False) if a > 0]
    if len(rets) < 2:
        return None
    mean = sum(rets) / len(rets)
    sd = math.sqrt(sum((r - mean) ** 2 for r in rets) / (len(rets) - 1))
    return round(mean / sd * math.sqrt(365), 3) if sd > 0 else None


def _calibration(outcomes: list[Any]) -> tuple[dict[str, Any], dict[str, tuple[float, float, int]]]:
    from precog.forecast.metrics import calibration, score

    pooled: dict[str, tuple[list[float], list[float], list[float]]] = {}
    for o in outcomes:
        for model, (p, y, mk) in o.world.calibration.items():
            P, Y, M = pooled.setdefault(model, ([], [], []))
            P.extend(p)
            Y.extend(y)
            M.extend(mk)
    out: dict[str, Any] = {}
    brier: dict[str, tuple[float, float, int]] = {}
    for model, (p, y, mk) in sorted(pooled.items()):
        if not p:
            continue
        s = score(p, y).as_dict()
        sm = score(mk, y).as_dict()
        bins = [{"lo": round(b.lower, 2), "hi": round(b.upper, 2), "n": b.n, "mean_p": round(b.mean_forecast, 4),
                 "observed": round(b.observed, 4)} for b in calibration(p, y) if b.n]
        base_rate = sum(y) / len(y)

        def r4(d: dict[str, Any]) -> dict[str, Any]:
            return {k: round(v, 4) if isinstance(v, float) else v for k, v in d.items()}

        # spec 7.3 benchmarks: the market's probability, a coin flip, and the average outcome of these games
        out[model] = {"n": len(p), "model": r4(s), "market": r4(sm), "bins": bins,
                      "coin_flip": r4(score([0.5] * len(y), y).as_dict()),
                      "base_rate": r4(score([min(max(base_rate, 0.001), 0.999)] * len(y), y).as_dict())}
        brier[model] = (float(s["brier"]), float(sm["brier"]), len(p))
    return out, brier


def _engine_throughput(outcomes: list[Any]) -> dict[str, Any]:
    """Which path replayed the data and how fast (events through the engine per second of replay)."""
    events = sum(int(o.engine_stats.get("world", {}).get("events", 0)) for o in outcomes)
    seconds = sum(float(o.engine_stats.get("replay_seconds") or 0.0) for o in outcomes)
    cpu = sum(float(o.engine_stats.get("replay_cpu_seconds") or 0.0) for o in outcomes)
    paths = sorted({str(o.engine_stats.get("engine_path")) for o in outcomes})
    return {"path": "db-backed live engine (" + ", ".join(paths) + ")", "events": events,
            "steps": sum(o.steps for o in outcomes),
            "idle_steps_skipped": sum(int(o.engine_stats.get("idle_steps_skipped", 0)) for o in outcomes),
            "scan_only_steps": sum(int(o.engine_stats.get("scan_only_steps", 0)) for o in outcomes),
            "liquidation_waits_skipped": sum(int(o.engine_stats.get("liquidation_waits_skipped", 0))
                                             for o in outcomes),
            "refusals_repeated": sum(int(o.engine_stats.get("refusals_repeated", 0)) for o in outcomes),
            "position_marks_kept": sum(int(o.engine_stats.get("position_marks_kept", 0)) for o in outcomes),
            "quotes_deferred": sum(int(o.engine_stats.get("quotes_deferred", 0)) for o in outcomes),
            "replay_seconds": round(seconds, 3), "events_per_second": round(events / seconds) if seconds else None,
            "replay_cpu_seconds": round(cpu, 3)}  # this process only (PostgreSQL's own work is not in it)


def _name_trained_versions(positions: list[dict[str, Any]], chosen: list[Any], outcomes: list[Any]) -> None:
    """Each position's `model_version`: its method's registered model and the version the window traded with
    (a walk-forward window trains its own), so the by-model table names what made the forecast."""
    key_of = {c.ref: c.spec.model_key for c in chosen}
    versions = {o.run_id: o.models for o in outcomes}
    for p in positions:
        info = (versions.get(p["run_id"]) or {}).get(key_of.get(p["method"] or "", ""), {})
        version = info.get("version") or ("untrained" if info.get("status") == "untrained" else None)
        p["model_version"] = f"{p['model'] or 'unknown'} ({version})" if version else p["model"]


def build_summary(conn: psycopg.Connection[Any], backtest_id: int, params: dict[str, Any], dataset: Any,
                  chosen: list[Any], outcomes: list[Any], bankroll: Decimal) -> dict[str, Any]:
    run_ids = [o.run_id for o in outcomes]
    positions = _positions(conn, run_ids)
    _name_trained_versions(positions, chosen, outcomes)
    paths = price_paths(outcomes)
    trades = _trade_stats(conn, run_ids)
    lanes = _lane_curves(outcomes)
    curve = _combined(lanes)
    start_equity = curve[0][1] if curve else bankroll
    dd, worst, worst_pct = _drawdown(curve)
    totals = _stats(positions, paths)
    final_equity = curve[-1][1] if curve else bankroll
    calib, brier = _calibration(outcomes)
    done = [p for p in positions if p["status"] == "settled" or p["status"] == "closed"]
    verdict = guard.check([p["entry_price"] for p in done], [(p["realized_pnl"] or ZERO) > 0 for p in done], brier)
    totals.update({"ledger_match": all(o.engine_stats.get("ledger", {}).get("match", False) for o in outcomes),
                   "fills": int(trades["fills"]), "contracts": int(trades["contracts"]),
                   "fees_paid": str(trades["fees"]), "bankroll": str(bankroll), "lanes": len(lanes),
                   "start_equity": str(start_equity), "final_equity": str(final_equity),
                   "return_pct": str(q4((final_equity - start_equity) / start_equity)), "max_drawdown": str(worst),
                   "max_drawdown_pct": str(worst_pct), "sharpe": _sharpe(curve),
                   "pnl_per_contract": str(q4(Decimal(totals["pnl"]) / trades["contracts"]))
                   if trades["contracts"] else None})
    return {
        "backtest_id": backtest_id, "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "parameters": params, "data": {"kind": dataset.kind, "source": dataset.source,
                                       "skipped_messages": _skipped_messages(outcomes)},
        "methods": [{"ref": c.ref, "model": c.model_ref, "strategy": c.strategy_ref, "model_key": c.spec.model_key,
                     "phase": c.spec.phase} for c in chosen],
        "totals": totals,
        "by_method": _with_all(_group(positions, "method", paths), "method", [c.ref for c in chosen], paths),
        "by_strategy": _group(positions, "strategy", paths),
        "by_model": _group(positions, "model_version", paths),
        "entry_value_definitions": ENTRY_VALUE_DEFINITIONS,
        "exits_by_reason": _exits(conn, run_ids),
        "windows": [{"index": o.window.index, "lane": o.lane, "lane_methods": o.lane_methods,
                     "engine_run_id": o.run_id,
                     "train": [str(o.window.train_from) if o.window.train_from else None,
                               str(o.window.train_to) if o.window.train_to else None],
                     "test": [str(o.window.test_from), str(o.window.test_to)], "trained_on": o.trained_on,
                     "models": o.models,
                     "start_cash": str(o.equity[0][1]), "pnl": str(o.equity[-1][1] - o.equity[0][1]),
                     # the money the next window of the lane starts with (open contracts are not carried)
                     "end_cash": o.engine_stats.get("end_cash"),
                     "steps": o.steps, "idle_steps_skipped": o.engine_stats.get("idle_steps_skipped", 0),
                     "position_checks": o.engine_stats.get("position_checks"),
                     "replay_seconds": o.engine_stats.get("replay_seconds"),
                     "engine_path": o.engine_stats.get("engine_path"),
                     "entries_refused": o.engine_stats.get("entries_refused", {}),
                     "breakers": o.engine_stats.get("breakers", []), "world": o.engine_stats.get("world", {}),
                     "ledger": o.engine_stats.get("ledger", {})}
                    for o in outcomes],
        "notes": [n for o in outcomes for n in o.notes()],
        "engine": _engine_throughput(outcomes),
        "calibration": calib,
        "leak_guard": verdict.as_dict(),
        "equity_curve": [[ts, str(v)] for ts, v in curve],
        "equity_by_lane": {name: [[ts, str(v)] for ts, v in c] for name, c in lanes.items()},
        "drawdown_curve": [[ts, str(v)] for ts, v in dd],
        "trades": [_trade_row(p, paths) for p in positions],
    }


# ---------------------------------------------------------------------------------------------- rendering


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def charts(summary: dict[str, Any]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: dict[str, str] = {}
    curve = summary.get("equity_curve") or []
    if curve:
        import matplotlib.dates as mdates

        xs = [mdates.date2num(datetime.fromtimestamp(t / 1000, tz=UTC)) for t, _ in curve]
        fig, ax = plt.subplots(figsize=(9, 3.2))
        by_lane = summary.get("equity_by_lane") or {}
        if len(by_lane) > 1:  # A/B: one line per method (each with its own bankroll)
            for name, c in sorted(by_lane.items()):
                ax.plot([mdates.date2num(datetime.fromtimestamp(t / 1000, tz=UTC)) for t, _ in c],
                        [float(v) for _, v in c], label=name)
            ax.legend(fontsize=8)
            ax.set_title("Equity by method ($, each with its own bankroll)")
        else:
            ax.plot(xs, [float(v) for _, v in curve], color="#1f6feb")
            ax.set_title("Equity ($)")
        ax.xaxis_date()
        ax.grid(alpha=0.3)
        out["equity"] = _png(fig)
        dd = summary.get("drawdown_curve") or []
        fig, ax = plt.subplots(figsize=(9, 2.4))
        ax.fill_between([mdates.date2num(datetime.fromtimestamp(t / 1000, tz=UTC)) for t, _ in dd],
                        [float(v) for _, v in dd], 0, color="#d73a49", alpha=0.5)
        ax.xaxis_date()
        ax.set_title("Drawdown ($)")
        ax.grid(alpha=0.3)
        out["drawdown"] = _png(fig)
    rows = summary.get("by_method") or []
    if rows:
        fig, ax = plt.subplots(figsize=(6, 0.5 + 0.45 * len(rows)))
        vals = [float(r["pnl"]) for r in rows]
        ax.barh([r["method"] for r in rows], vals, color=["#2da44e" if v >= 0 else "#d73a49" for v in vals])
        ax.set_title("P&L by method ($)")
        ax.grid(alpha=0.3, axis="x")
        out["by_method"] = _png(fig)
    cal = summary.get("calibration") or {}
    if cal:
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        ax.plot([0, 1], [0, 1], color="#888", linestyle="--", linewidth=1)
        for model, c in sorted(cal.items()):
            bins = c["bins"]
            ax.plot([b["mean_p"] for b in bins], [b["observed"] for b in bins], marker="o", label=model)
        ax.set_xlabel("forecast")
        ax.set_ylabel("observed frequency")
        ax.set_title("Calibration of the forecasts used")
        ax.legend(fontsize=8)
        out["calibration"] = _png(fig)
    return out


def _table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    if not rows:
        return "<p class='muted'>none</p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape('' if r.get(c) is None else str(r.get(c)))}</td>"
                                    for c in cols) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _m(value: str | None) -> str:
    return "" if value is None else fmt_money(Decimal(value))


def _measured(value: str | None, contracts: int | None, excluded: int | None = None) -> str:
    """A per-contract figure with the contracts it covers (a summary stored before the counts: the figure)."""
    if contracts is None:
        return "" if value is None else value
    text = f"{value if value is not None else 'none'} ({contracts} contracts"
    return text + (f"; {excluded} excluded: horizon past the last quote)" if excluded else ")")


def render_html(summary: dict[str, Any]) -> str:
    # Every dict of the summary is rendered in sorted key order: the stored summary comes back from JSONB with
    # its keys reordered, and `precog report --run` must re-render the very report the run wrote.
    pics = charts(summary)
    t = summary["totals"]
    guard_v = summary["leak_guard"]
    img = "".join(f"<figure><img alt='{k}' src='data:image/png;base64,{v}'></figure>" for k, v in pics.items())
    kv = [("P&L", _m(t["pnl"])), ("final equity", _m(t["final_equity"])), ("return", t["return_pct"]),
          ("fills", t["fills"]), ("positions", t["positions"]), ("hit rate", t["hit_rate"]),
          ("Sharpe (daily, annualized)", t["sharpe"]),
          ("max drawdown", f"{_m(t['max_drawdown'])} ({t['max_drawdown_pct']} of the peak)"),
          ("fees paid", _m(t["fees_paid"])), ("predicted EV", _m(t["predicted_ev"])),
          ("edge realization (P&L / EV)", t["edge_realization"]),
          ("CLV per contract (pre-game entries, against the closing line)",
           _measured(t["clv_per_contract"], t.get("clv_contracts"))),
          ("in-game price drift 15 min after entry, per contract",
           _measured(t.get(DRIFT_KEY), t.get("in_game_drift_contracts"), t.get("in_game_drift_excluded_contracts"))),
          ("our books match the exchange's ledger", "yes" if t.get("ledger_match") else "NO")]
    totals = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in kv)
    cols = ["positions", "closed", "winners", "hit_rate", "pnl", "fees", "predicted_ev", "edge_realization",
            "clv_per_contract", "clv_contracts", DRIFT_KEY, "in_game_drift_contracts"]
    definitions = summary.get("entry_value_definitions") or {}
    definitions_html = ("<ul class='muted'>" + "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>"
                                                        for k, v in sorted(definitions.items())) + "</ul>"
                        if definitions else "")
    cal_rows = [{"model": m, "n": c["n"], "brier": c["model"].get("brier"), "market_brier": c["market"].get("brier"),
                 "coin_flip_brier": c.get("coin_flip", {}).get("brier"),
                 "base_rate_brier": c.get("base_rate", {}).get("brier"), "accuracy": c["model"].get("accuracy"),
                 "log_loss": c["model"].get("log_loss"), "market_log_loss": c["market"].get("log_loss")}
                for m, c in sorted((summary.get("calibration") or {}).items())]
    win_rows = [{"window": w["index"], "methods": ", ".join(w.get("lane_methods", [])),
                 "train": " .. ".join(x or "-" for x in w["train"]),
                 "test": " .. ".join(w["test"]), "engine run": w["engine_run_id"], "start cash": w["start_cash"],
                 "pnl": w["pnl"],
                 "trained on (games)": ", ".join(f"{k} {v}" for k, v in sorted(w["trained_on"].items())),
                 "model versions": "; ".join(f"{k}: {m.get('version') or 'UNTRAINED'}"
                                             for k, m in sorted((w.get("models") or {}).items()))}
                for w in summary["windows"]]
    notes = summary.get("notes") or []
    notes_html = ("<ul class='bad'>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>"
                  if notes else "")
    guard_html = ("<p class='bad'><b>LEAK GUARD FIRED</b>: " + "; ".join(html.escape(r) for r in guard_v["reasons"])
                  + "</p>") if guard_v["fired"] else "<p class='ok'>leak guard: no sign of look-ahead</p>"
    trades = summary.get("trades", [])[:500]
    p = summary["parameters"]
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Backtest {summary['backtest_id']}</title>
<style>body{{font:14px system-ui,sans-serif;margin:24px;color:#222}}table{{border-collapse:collapse;margin:8px 0 18px}}
td,th{{border:1px solid #ddd;padding:3px 8px;text-align:left}}th{{background:#f6f8fa}}.bad{{color:#b00}}.ok{{color:#176f2c}}
.muted{{color:#888}}figure{{display:inline-block;margin:6px}}img{{max-width:100%}}</style></head><body>
<h1>Backtest {summary['backtest_id']}</h1>
<p>data: {html.escape(summary['data']['kind'])} — {html.escape(summary['data']['source'])}; from {p.get('from')} to
{p.get('to')}; walk-forward: {html.escape(str(p.get('walk_forward')))}; bankroll {_m(p.get('bankroll'))}; market half spread
{p.get('half_spread')}; fees: {html.escape(str(p.get('fees')))}. Generated {summary['generated_at']}.</p>
<p>methods: {html.escape(', '.join(m['ref'] + ' (' + m['model'] + ', ' + m['phase'] + ')' for m in summary['methods']))}</p>
{guard_html}
<h2>Summary</h2><table>{totals}</table>
{definitions_html}
{img}
<h2>By method (A/B)</h2>{_table(summary['by_method'], ['method', *cols])}
<h2>By strategy</h2>{_table(summary['by_strategy'], ['strategy', *cols])}
<h2>By model</h2>{_table(summary['by_model'], ['model_version', *cols])}
<h2>Exits by reason</h2>{_table(summary['exits_by_reason'], ['reason', 'priority', 'exits', 'contracts', 'realized_pnl'])}
<h2>Forecast calibration (forecasts used vs outcomes; market = the price then)</h2>
{_table(cal_rows, ['model', 'n', 'brier', 'market_brier', 'coin_flip_brier', 'base_rate_brier', 'accuracy', 'log_loss', 'market_log_loss'])}
<h2>Windows</h2>{notes_html}{_table(win_rows, ['window', 'methods', 'train', 'test', 'engine run', 'start cash', 'pnl', 'trained on (games)', 'model versions'])}
<h2>Trades (first {len(trades)})</h2>
{_table(trades, ['position_id', 'entry_time', 'entry_phase', 'market', 'method', 'side', 'quantity', 'entry_price', 'entry_edge', 'clv', 'drift_15m', 'exit_reason', 'pnl', 'fees'])}
</body></html>"""


def write_reports(conn: psycopg.Connection[Any] | None, backtest_id: int, summary: dict[str, Any],
                  out: Path | None) -> tuple[Path, Path]:
    from precog.backtest.runner import default_out_dir

    folder = out or default_out_dir()
    folder.mkdir(parents=True, exist_ok=True)
    html_path = folder / f"backtest-{backtest_id}.html"
    json_path = folder / f"backtest-{backtest_id}.json"
    json_path.write_text(json.dumps(summary, indent=1, default=str, sort_keys=True), encoding="utf-8")
    html_path.write_text(render_html(summary), encoding="utf-8")
    return html_path, json_path
