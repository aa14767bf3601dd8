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
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from precog.backtest.errors import BacktestError
from precog.backtest.feed import CLOSE, FINAL, LIST, QUOTE, STATE, ArchivedGame, Event, dt_to_ms, ms_to_dt
from precog.domain.market import Quote
from precog.forecast.teams import canonical_team
from precog.venues.kalshi.parsing import count, dollars, parse_ticker


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
        if not files:
            raise BacktestError(f"{path}: no recording files (*.jsonl.gz)")
        rows: list[tuple[int, int, str, Any]] = []
        for f in files:
            rows.extend(_read_rows(f))
        if not rows:
            raise BacktestError(f"{path}: the recording holds no messages")
        rows.sort(key=lambda r: (r[0], r[1]))  # receive order, as `read_recording` merges the files
        return cls(str(path), [(ns // 1_000_000, src, payload) for ns, _, src, payload in rows], tz=tz)

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
        from precog.venues.kalshi.parsing import parse_lifecycle

        markets: dict[str, _Market] = {}
        days: dict[int, date] = {}
        valid: set[str] = set()  # tickers the local exchange takes
        out: list[Event] = []
        seq = 0
        self.skipped = 0

        def emit(ts: int, kind: str, ticker: str, data: dict[str, Any]) -> None:
            nonlocal seq
            seq += 1
            out.append(Event(ts, seq, kind, tag + ticker, data))

        for ts, src, payload in self.messages:
            if start is not None or end is not None:
                minute = ts // 60_000  # time zone offsets are whole quarter hours: a minute is on one day
                day = days.get(minute)
                if day is None:
                    day = days[minute] = self.day(ts)
                if (start is not None and day < start) or (end is not None and day > end):
                    continue
            if src == "kalshi:ws":
                try:
                    q = _current_ticker(payload)
                    if q is None:
                        env = json.loads(payload) if isinstance(payload, str | bytes) else payload
                        kind = env.get("type")
                        if kind in ("ticker", "ticker_v2"):
                            q = parse_ticker(env["msg"])
                    if q is not None:
                        if q.ticker not in valid:
                            if not _tradable_ticker(q.ticker):  # the local exchange refuses it: skip the frame
                                raise ValueError(f"ticker {q.ticker!r} is not valid")
                            valid.add(q.ticker)
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


class _TickerMsg(msgspec.Struct):
    """The fields of a ticker frame's `msg` that `parse_ticker` reads (any JSON value; checked below)."""

    market_ticker: Any = None
    ticker: Any = None
    yes_bid_dollars: Any = None
    yes_ask_dollars: Any = None
    yes_bid_size_fp: Any = None
    yes_ask_size_fp: Any = None
    price_dollars: Any = None
    price_fixed: Any = None
    price: Any = None
    volume_fp: Any = None
    volume: Any = None
    open_interest_fp: Any = None
    open_interest: Any = None
    ts_ms: Any = None
    ts: Any = None


class _TickerFrame(msgspec.Struct):
    type: Any = None
    msg: _TickerMsg | None = None


class _Line(msgspec.Struct):
    seq: int
    source: str
    received_at: str
    recv_ns: int
    payload: msgspec.Raw


_decode_frame = msgspec.json.Decoder(_TickerFrame).decode
_decode_line = msgspec.json.Decoder(_Line).decode
_TEXT_VALUES: dict[str, dict[str, Decimal | None]] = {}  # field -> text -> parsed value (few distinct texts)


def _read_rows(path: Path) -> Iterator[tuple[int, int, str, Any]]:
    """(recv_ns, seq, source, payload) of one recording file, as `precog.ingest.recorder.read_recording` reads
    it; a `kalshi:ws` frame's payload is kept as its JSON text (decoded once, by `_current_ticker`)."""
    from precog.ingest.recorder import recorded_lines

    for lineno, line in recorded_lines(path):
        try:
            row = _decode_line(line)
            datetime.fromisoformat(row.received_at)
            raw = bytes(row.payload)
            payload = (msgspec.json.decode(raw) if raw[:1] == b'"' else raw) if row.source == "kalshi:ws" \
                else json.loads(raw)
        except (msgspec.DecodeError, json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
            raise BacktestError(f"{path}:{lineno}: not a recorded message ({exc})") from exc
        yield row.recv_ns, row.seq, row.source, payload


def _field_value(field: str, text: str) -> Decimal | None:
    """A string field of a ticker `msg` parsed as `parse_ticker` parses it (the same helper on that one field),
    remembered per distinct text; a KalshiSchemaError is raised as parse_ticker raises it."""
    known = _TEXT_VALUES.get(field)
    if known is None:
        known = _TEXT_VALUES[field] = {}
    value = known.get(text)
    if value is None:
        name, _, suffix = field.rpartition("_")
        value = count({field: text}, name, "ticker", required=False) if suffix == "fp" else \
            dollars({field: text}, name, "ticker", required=False, price=True)
        if len(known) < 20_000:
            known[text] = value
    return value


def _current_ticker(payload: Any) -> Quote | None:
    """A ticker frame in Kalshi's current shape (`*_dollars` / `*_fp` strings) as `parse_ticker` reads it, with
    the same checks on every field it reads; None for any other frame or shape (the caller parses it in full)."""
    if not isinstance(payload, str | bytes):
        return None
    try:
        frame = _decode_frame(payload)
    except msgspec.DecodeError:  # not JSON, or `msg` not an object: the full parser says what is wrong
        return None
    m = frame.msg
    if frame.type not in ("ticker", "ticker_v2") or m is None:
        return None
    ticker, bid, ask, bid_size, ask_size = (m.market_ticker, m.yes_bid_dollars, m.yes_ask_dollars,
                                            m.yes_bid_size_fp, m.yes_ask_size_fp)
    if not (type(ticker) is str and ticker and type(bid) is str and type(ask) is str
            and type(bid_size) is str and type(ask_size) is str):
        return None  # a legacy or partial shape: the full parser
    # the fields parse_ticker reads beside these are checked as it checks them
    if type(m.price_dollars) is str:
        _field_value("price_dollars", m.price_dollars)
    elif m.price_dollars is not None or m.price_fixed is not None or m.price is not None:
        return None
    for fp, legacy, name in ((m.volume_fp, m.volume, "volume_fp"),
                             (m.open_interest_fp, m.open_interest, "open_interest_fp")):
        if type(fp) is str:
            _field_value(name, fp)
        elif fp is not None or legacy is not None:
            return None
    if m.ts_ms is not None or m.ts is not None:
        parse_ticker({"market_ticker": ticker, "ts_ms": m.ts_ms, "ts": m.ts})
    return Quote(ticker, _field_value("yes_bid_dollars", bid), _field_value("yes_ask_dollars", ask),
                 _field_value("yes_bid_size_fp", bid_size), _field_value("yes_ask_size_fp", ask_size))


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
