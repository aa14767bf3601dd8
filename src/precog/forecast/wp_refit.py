"""Automatic refits of the in-game WP model (spec 7.3 monitoring: "auto-retrain weekly or when < 90%").

A refit exports the in-game states ingestion stored for finished NFL games (`state_plays.export_plays`, after the
rows of `base_plays` when set) and trains a new version of the WP model on that file (`wp_versions.train_version`).
It is **due** when finished games with in-game states came in after the last automatic version's data
(`training_end_date`) and either `min_new_games` of them did and `interval_days` passed since that version, or
the WP version in use has degraded — its recent/historical Brier ratio on positions held to settlement
(`forecast.health`) is below `min_recent_performance` (0.90) — whatever their number (then at most one a day).
A refit that failed is not tried again on the same data: the next new game tries again. The version is registered
`validating` with its held-out evaluation and `created_by` "precog auto-refit"; it never replaces the version in
use by itself: an operator (or the lifecycle rules) evaluates and promotes it. Too little data (fewer than
`min_training_games` games in the file) trains nothing and says so.

`WpAutoRefit` checks at most every `check_minutes` inside the long-running ingestion process, in a worker
thread with its own connection; a new version raises `wp_refit_ready` (low), a failure `wp_refit_failed`
(medium), both deduplicated, and nothing here ever stops ingestion.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from precog.forecast.errors import ForecastError
from precog.forecast.health import HealthSettings, health_report

log = logging.getLogger(__name__)

AUTO_CREATOR = "precog auto-refit"
DEGRADED_SPACING = timedelta(days=1)  # a degraded version in use refits at most this often
READY_ALERT = "wp_refit_ready"
FAILED_ALERT = "wp_refit_failed"


@dataclass(frozen=True)
class RefitSettings:
    """probability_models.yaml `wp.auto_refit`."""

    enabled: bool = True
    interval_days: int = 7
    min_new_games: int = 16
    min_recent_performance: float = 0.90
    min_training_games: int = 256
    base_plays: Path | None = None
    check_minutes: float = 60.0
    name: str = "wp_nfl"
    health: HealthSettings = HealthSettings()  # how the version in use is judged (probability_models.health)

    @classmethod
    def from_config(cls, config: Any) -> RefitSettings:
        block = config.get("probability_models.wp.auto_refit", None) or {}
        base = block.get("base_plays")
        return cls(enabled=bool(block.get("enabled", True)), interval_days=int(block.get("interval_days", 7)),
                   min_new_games=int(block.get("min_new_games", 16)),
                   min_recent_performance=float(block.get("min_recent_performance", 0.90)),
                   min_training_games=int(block.get("min_training_games", 256)),
                   base_plays=Path(str(base)).expanduser() if base else None,
                   check_minutes=float(block.get("check_minutes", 60)), health=HealthSettings.from_config(config))


@dataclass(frozen=True)
class RefitDecision:
    due: bool
    reason: str
    new_games: int
    since: date | None  # the last automatic version's data end (None: no automatic version yet)
    through: date | None  # the newest finished game day with in-game states


def _last_auto(conn: psycopg.Connection[Any], name: str) -> tuple[date | None, datetime | None]:
    row = conn.execute("SELECT training_end_date, created_at FROM probability_models WHERE model_name = %s"
                       " AND created_by = %s ORDER BY created_at DESC, model_id DESC LIMIT 1",
                       (name, AUTO_CREATOR)).fetchone()
    return (row[0], row[1]) if row else (None, None)


def _new_games(conn: psycopg.Connection[Any], since: date | None) -> tuple[int, date | None]:
    """Finished NFL games (current row final, scored) after `since` with at least one live state with the ball
    placed; and the newest such game's Eastern day."""
    from precog.forecast.state_plays import FINISHED_GAME, GAME_DAY

    row = conn.execute(
        f"SELECT count(*), max({GAME_DAY}) FROM game_states g WHERE {FINISHED_GAME}"  # noqa: S608 - constant SQL fragments; values are parameters
        f" AND (%(since)s::date IS NULL OR {GAME_DAY} > %(since)s)"
        " AND EXISTS (SELECT 1 FROM game_states v WHERE v.sport = 'nfl' AND v.external_game_id = g.external_game_id"
        "             AND v.status = 'live' AND v.possession IS NOT NULL AND v.sport_metadata ->> 'down' IS NOT NULL)",
        {"since": since}).fetchone()
    return (int(row[0]), row[1]) if row else (0, None)


def _degraded(conn: psycopg.Connection[Any], settings: RefitSettings, now: datetime) -> str | None:
    """Why the WP version in use counts as degraded (its recent/historical ratio below the bar), or None."""
    ids = [r[0] for r in conn.execute("SELECT model_id FROM probability_models WHERE model_name = %s AND "
                                      "status = 'active'", (settings.name,)).fetchall()]
    if not ids:
        return None
    for h in health_report(conn, settings.health, now, ids):
        if h.recent_ratio is not None and h.recent_ratio < settings.min_recent_performance:
            return f"{h.ref}'s recent/historical Brier ratio {h.recent_ratio:.3f} < {settings.min_recent_performance}"
    return None


def decide(conn: psycopg.Connection[Any], settings: RefitSettings, now: datetime) -> RefitDecision:
    since, last_at = _last_auto(conn, settings.name)
    n, through = _new_games(conn, since)
    if n == 0:
        return RefitDecision(False, "no finished game with in-game states since the last automatic version", 0,
                             since, through)
    degraded = _degraded(conn, settings, now)
    if degraded is not None:
        # the version in use stays in use until someone promotes a new one: at most one degraded refit a day
        if last_at is not None and now - last_at < DEGRADED_SPACING:
            return RefitDecision(False, f"degraded ({degraded}), but the last automatic version is younger than a "
                                 "day", n, since, through)
        return RefitDecision(True, f"degraded: {degraded}", n, since, through)
    if last_at is not None and now - last_at < timedelta(days=settings.interval_days):
        return RefitDecision(False, f"the last automatic version is younger than {settings.interval_days} days", n,
                             since, through)
    if n < settings.min_new_games:
        return RefitDecision(False, f"{n} new games < min_new_games {settings.min_new_games}", n, since, through)
    return RefitDecision(True, f"{n} new games since {since or 'the start'}", n, since, through)


def refit(conn: psycopg.Connection[Any], settings: RefitSettings, decision: RefitDecision, out_dir: Path) -> Any:
    """Export and train (see the module doc). Returns the TrainedVersion; raises ForecastError when the file
    holds fewer than `min_training_games` games (nothing is registered)."""
    from precog.forecast.plays import read_plays
    from precog.forecast.registry import ensure_builtin_models
    from precog.forecast.state_plays import export_plays
    from precog.forecast.wp_versions import train_version

    through = decision.through
    assert through is not None
    ensure_builtin_models(conn)  # the shipped versions keep their names: an automatic one is never `v1.0`
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{settings.name}-auto-{through:%Y%m%d}-{int(time.time())}.csv.gz"
    summary = export_plays(conn, path, end=through, base=settings.base_plays)
    games = len(set(read_plays(path, require_outcomes=True).game_id.tolist()))
    if games < settings.min_training_games:
        path.unlink(missing_ok=True)
        raise ForecastError(f"an automatic {settings.name} refit needs {settings.min_training_games} games in its "
                            f"training file and has {games} ({summary.games} ingested"
                            + (f", the rest from {settings.base_plays}" if settings.base_plays else
                               "; set probability_models.wp.auto_refit.base_plays to add a plays file") + ")")
    return train_version(conn, path, name=settings.name, created_by=AUTO_CREATOR, training_end_date=through,
                         description=f"automatic refit ({decision.reason}): {summary.rows} ingested in-game states "
                                     f"of {summary.games} games through {through}"
                                     + (f" after {summary.base_rows} plays of {settings.base_plays.name}"
                                        if settings.base_plays else ""))


class WpAutoRefit:
    """Runs `decide` and, when due, `refit` inside the ingestion process (see the module doc)."""

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]], settings: RefitSettings, out_dir: Path, *,
                 alerts: Any | None = None, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.connect = connect
        self.settings = settings
        self.out_dir = out_dir
        self.alerts = alerts
        self.now = now
        self.trained: list[Any] = []
        self.last_decision: RefitDecision | None = None
        self._failed_on: tuple[int, date | None] | None = None  # (new games, through) of the last failed refit


    def run_once(self) -> Any | None:
        """One check (blocking: call it from a worker thread); the new version, or None."""
        self.last_decision = None
        try:
            with self.connect() as conn:
                decision = self.last_decision = decide(conn, self.settings, self.now())
                if not decision.due or self._failed_on == (decision.new_games, decision.through):
                    return None  # not due, or failed on exactly this data already (tried again on new games)
                trained = refit(conn, self.settings, decision, self.out_dir)
        except Exception as exc:  # noqa: BLE001 - a failed refit must never stop ingestion; it is alerted
            if self.last_decision is not None:
                self._failed_on = (self.last_decision.new_games, self.last_decision.through)
            log.exception("automatic %s refit failed", self.settings.name)
            self._alert(FAILED_ALERT, "medium", f"automatic {self.settings.name} refit failed: {exc}",
                        {"error": str(exc)})
            return None
        self.trained.append(trained)
        log.info("automatic refit: %s trained (%s)", trained.ref, decision.reason)
        self._alert(READY_ALERT, "low",
                    f"{trained.ref} was trained automatically ({decision.reason}); held-out Brier "
                    f"{trained.test_brier if trained.test_brier is None else round(trained.test_brier, 4)} on "
                    f"{trained.test_games} games; it is validating: evaluate it (`precog forecast evaluate`) and "
                    f"promote it (`precog models`) if it is better", trained.as_dict())
        return trained

    def _alert(self, kind: str, severity: str, message: str, details: dict[str, Any]) -> None:
        if self.alerts is None:
            return
        try:
            self.alerts.raise_alert(kind, severity, "forecast", message, details,
                                    dedup_key=f"{kind}:{self.settings.name}", category="system")
        except Exception:  # noqa: BLE001 - an alert sink that fails too must not end the ingestion process
            log.exception("could not raise %s", kind)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.to_thread(self.run_once)
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.settings.check_minutes * 60)
            except TimeoutError:
                pass
