"""A recording from `precog ingest run --record DIR` as backtest events.

What is used (each message at its receive time — the time we knew it, never the exchange's own later
timestamp):
- `kalshi:ws` ticker frames: the recorded top of book. The market maker in the local exchange quotes
  exactly that bid/ask (sizes as recorded, 100 when absent), so our orders fill against what the market
  showed then.
- `kalshi:ws` lifecycle frames: `closed` ends trading; `determined`/`settled` with a result settles.
- `espn:<sport>` scoreboard bodies: live game states for markets whose ticker names both teams
  (e.g. KXNFLGAME-25SEP07DALPHI-PHI: YES = PHI). A game that goes final settles its markets from the score
  when the recording has no lifecycle result for them.
Frames that do not parse are counted and skipped (the report says how many).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, timedelta, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any

from precog.backtest.errors import BacktestError
from precog.backtest.feed import CLOSE, FINAL, LIST, QUOTE, STATE, ArchivedGame, Event, dt_to_ms, ms_to_dt
from precog.forecast.teams import canonical_team


@dataclass
class _Market:
    ticker: str
    first_ms: int
    yes_team: str | None = None
    game: tuple[str, str] | None = None  # (home, away) once linked to a game
    final_seen: bool = False


@dataclass
class RecordingDataset:
    source: str
    messages: list[tuple[int, str, Any]]  # (recv ms, source, payload)
    kind: str = "recording"
    archive: list[ArchivedGame] = field(default_factory=list)
    skipped: int = 0
    # the time zone whose calendar days --from/--to name (system.defaults.timezone): a Sunday-night game
    # recorded in New York runs past midnight UTC and still belongs to Sunday
    tz: tzinfo = UTC

    @classmethod
    def open(cls, path: Path, files: list[Path], tz: tzinfo = UTC) -> RecordingDataset:
        from precog.ingest.recorder import read_recording

        if not files:
            raise BacktestError(f"{path}: no recording files (*.jsonl.gz)")
        msgs = [(m.recv_ns // 1_000_000, m.source, m.payload) for m in read_recording(path)]
        if not msgs:
            raise BacktestError(f"{path}: the recording holds no messages")
        msgs.sort(key=lambda x: x[0])
        return cls(str(path), msgs, tz=tz)

    def date_range(self) -> tuple[date, date]:
        return self.day(self.messages[0][0]), self.day(self.messages[-1][0])

    def day(self, ts_ms: int) -> date:
        """The calendar day of a receive time in the dataset's time zone."""
        return ms_to_dt(ts_ms).astimezone(self.tz).date()

    def has_in_game(self, start: date | None, end: date | None) -> bool:
        return any(src.startswith("espn:") for _, src, _ in self.messages)

    def has_pre_game(self, start: date | None, end: date | None) -> bool:
        return True  # recorded markets are quoted whenever the venue quoted them, before their games too

    def play_by_play(self) -> None:
        return None  # a recording holds scoreboards, not finished games' play-by-play to train on

    def events(self, start: date | None, end: date | None, tag: str) -> list[Event]:
        from precog.feeds.espn_parse import parse_scoreboard
        from precog.venues.kalshi.errors import KalshiSchemaError
        from precog.venues.kalshi.parsing import parse_lifecycle, parse_ticker

        markets: dict[str, _Market] = {}
        out: list[Event] = []
        seq = 0
        self.skipped = 0

        def emit(ts: int, kind: str, ticker: str, data: dict[str, Any]) -> None:
            nonlocal seq
            seq += 1
            out.append(Event(ts, seq, kind, tag + ticker, data))

        for ts, src, payload in self.messages:
            day = self.day(ts)
            if (start is not None and day < start) or (end is not None and day > end):
                continue
            if src == "kalshi:ws":
                try:
                    env = json.loads(payload) if isinstance(payload, str) else payload
                    kind = env.get("type")
                    if kind in ("ticker", "ticker_v2"):
                        q = parse_ticker(env["msg"])
                        if not _tradable_ticker(q.ticker):  # the local exchange refuses it: skip the frame
                            raise ValueError(f"ticker {q.ticker!r} is not valid")
                        if q.yes_bid is None or q.yes_ask is None or q.yes_bid <= 0 or q.yes_ask >= 1:
                            continue
                        data = {"bid": q.yes_bid, "ask": q.yes_ask, "fair": (q.yes_bid + q.yes_ask) / 2,
                                "bid_size": int(q.yes_bid_size or 100), "ask_size": int(q.yes_ask_size or 100)}
                        m = markets.get(q.ticker)
                        if m is None:
                            m = markets[q.ticker] = _Market(q.ticker, ts, _yes_team(q.ticker))
                            emit(ts, LIST, q.ticker, {**_schedule(m, ts), **data})
                        else:
                            emit(ts, QUOTE, q.ticker, data)
                    elif kind in ("market_lifecycle_v2", "market_lifecycle"):
                        lc = parse_lifecycle(env["msg"])
                        m = markets.get(lc.ticker)
                        if m is None or m.final_seen:
                            continue
                        if lc.result in ("yes", "no") or lc.settlement_value is not None:
                            value = lc.settlement_value if lc.settlement_value is not None else \
                                Decimal(1 if lc.result == "yes" else 0)
                            m.final_seen = True
                            emit(ts, FINAL, lc.ticker, {"settlement_value": value})
                        elif lc.event_type == "closed":
                            emit(ts, CLOSE, lc.ticker, {})
                except (KalshiSchemaError, KeyError, TypeError, ValueError, AttributeError):
                    self.skipped += 1
            elif src.startswith("espn:"):
                sport = src.split(":", 1)[1]
                try:
                    body = payload.get("body") if isinstance(payload, dict) else payload
                    if not isinstance(body, str | bytes | dict):
                        raise TypeError("no scoreboard body")
                    board = parse_scoreboard(body, sport)
                except (ValueError, TypeError, AttributeError):
                    self.skipped += 1
                    continue
                for g in board.games:
                    home, away = canonical_team(g.home_team), canonical_team(g.away_team)
                    for m in markets.values():
                        if m.final_seen or not _names(m.ticker, home, away):
                            continue
                        m.game = (home, away)
                        if g.status == "final":
                            won = home if g.home_score > g.away_score else away if g.away_score > g.home_score \
                                else None
                            value = Decimal("0.5") if won is None else Decimal(1 if won == m.yes_team else 0)
                            m.final_seen = True
                            emit(ts, FINAL, m.ticker, {"settlement_value": value, "home": home, "away": away,
                                                       "home_score": g.home_score, "away_score": g.away_score})
                        elif g.status in ("live", "halftime"):
                            emit(ts, STATE, m.ticker, {
                                "home": home, "away": away, "yes_is_home": m.yes_team == home,
                                "home_score": g.home_score, "away_score": g.away_score, "period": g.period,
                                "clock_seconds": g.clock_seconds if g.clock_seconds is not None else 0,
                                "possession": g.possession, "down": g.down, "distance": g.distance,
                                "yards_to_goal": g.yards_to_goal if g.yards_to_goal is not None else 75,
                                "home_timeouts": getattr(g, "home_timeouts", None) or 3,
                                "away_timeouts": getattr(g, "away_timeouts", None) or 3})
        return out


def _tradable_ticker(ticker: str) -> bool:
    """The exchange's ticker rule: 1-200 characters, no whitespace or / ? #."""
    return 0 < len(ticker) <= 200 and not any(c.isspace() or c in "/?#" for c in ticker)


def _yes_team(ticker: str) -> str | None:
    part = ticker.rsplit("-", 1)
    return canonical_team(part[1]) if len(part) == 2 and 2 <= len(part[1]) <= 4 else None


def _names(ticker: str, home: str, away: str) -> bool:
    """The market's event part spells both teams (KXNFLGAME-25SEP07DALPHI-PHI names DAL and PHI)."""
    parts = ticker.split("-")
    if len(parts) < 3:
        return False
    event = parts[-2].upper()
    yes = canonical_team(parts[-1])
    return yes in (home, away) and all(any(code in event for code in _spellings(t)) for t in (home, away))


def _spellings(team: str) -> set[str]:
    from precog.forecast.teams import NFL_ALIASES

    return {team, *(alias for alias, canon in NFL_ALIASES.items() if canon == team)}


def _schedule(m: _Market, ts: int) -> dict[str, Any]:
    # Teams are unknown until a scoreboard links the market; the close comes from a lifecycle frame or, at
    # the latest, a day after the last message (the runner's end-of-data steps settle nothing past it).
    d = ms_to_dt(ts)
    return {"game_id": m.ticker, "home": m.yes_team or "", "away": "", "season": d.year, "week": "",
            "playoff": False, "neutral": False, "kickoff_ms": ts, "in_game": True, "yes_is_home": True,
            "close_ms": dt_to_ms(d + timedelta(days=7))}
