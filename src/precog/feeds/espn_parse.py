"""Normalise ESPN scoreboard responses (`site.api.espn.com/apis/site/v2/sports/.../scoreboard`) into GameState.

The payload is read with floats parsed as Decimal, so ESPN's win probabilities and clocks stay exact.
A payload that cannot be read raises EspnSchemaError naming the field path; a single bad game inside an
otherwise good board is reported in `ParsedScoreboard.errors` and the other games are kept.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any

from precog.domain.money import q4
from precog.feeds.game_state import SPORTS, GameState, GameStatus, Side, Sport


class EspnSchemaError(ValueError):
    """An ESPN payload that does not have the shape the parser relies on (schema drift or corruption)."""

    def __init__(self, sport: str, path: str, problem: str, *, game_id: str | None = None) -> None:
        self.sport = sport
        self.path = path
        self.problem = problem
        self.game_id = game_id
        where = f" game {game_id}" if game_id else ""
        super().__init__(f"ESPN {sport} scoreboard{where}: {path}: {problem}")


@dataclass(frozen=True, slots=True)
class ParsedScoreboard:
    sport: Sport
    games: list[GameState]
    errors: list[EspnSchemaError] = field(default_factory=list)
    unknown_statuses: list[str] = field(default_factory=list)
    missing_neutral_site: list[str] = field(default_factory=list)  # game ids read as home games (no flag sent)


# ESPN status.type.name -> our status. Anything else falls back on status.type.state (pre/in/post).
_STATUS_BY_NAME: dict[str, GameStatus] = {
    "STATUS_SCHEDULED": "scheduled",
    "STATUS_IN_PROGRESS": "live",
    "STATUS_END_PERIOD": "live",
    "STATUS_FIRST_HALF": "live",
    "STATUS_SECOND_HALF": "live",
    "STATUS_OVERTIME": "live",
    "STATUS_END_OF_REGULATION": "live",
    "STATUS_DELAYED": "live",
    "STATUS_RAIN_DELAY": "live",
    "STATUS_HALFTIME": "halftime",
    "STATUS_FINAL": "final",
    "STATUS_FINAL_OT": "final",
    "STATUS_FINAL_PEN": "final",
    "STATUS_FULL_TIME": "final",
    "STATUS_POSTPONED": "postponed",
    "STATUS_SUSPENDED": "suspended",  # stopped mid-game, resumes later: the state is kept
    "STATUS_CANCELED": "cancelled",
    "STATUS_CANCELLED": "cancelled",
    "STATUS_FORFEIT": "final",
}
_STATUS_BY_STATE: dict[str, GameStatus] = {"pre": "scheduled", "in": "live", "post": "final"}
_CLOCK_RE = re.compile(r"^\s*(?:(\d+):)?(\d+(?:\.\d+)?)\s*$")


def load_payload(raw: bytes | str, *, sport: str) -> dict[str, Any]:
    """JSON text -> dict with floats as Decimal; a non-JSON or non-object body is a schema error."""
    try:
        data = json.loads(raw, parse_float=Decimal)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EspnSchemaError(sport, "$", f"not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise EspnSchemaError(sport, "$", f"expected a JSON object, got {type(data).__name__}")
    return data


def parse_scoreboard(payload: Mapping[str, Any] | bytes | str, sport: str) -> ParsedScoreboard:
    """A whole scoreboard response -> ParsedScoreboard. Raises EspnSchemaError when `events` is unusable."""
    if sport not in SPORTS:
        raise ValueError(f"unknown sport {sport!r}; expected one of {', '.join(SPORTS)}")
    data = load_payload(payload, sport=sport) if isinstance(payload, bytes | str) else payload
    events = data.get("events")
    if events is None:
        raise EspnSchemaError(sport, "events", "missing (not a scoreboard response?)")
    if not isinstance(events, list):
        raise EspnSchemaError(sport, "events", f"expected a list, got {type(events).__name__}")
    games: list[GameState] = []
    errors: list[EspnSchemaError] = []
    unknown: list[str] = []
    no_site: list[str] = []
    for index, event in enumerate(events):
        try:
            game, status_name = parse_event(event, sport, path=f"events[{index}]")  # type: ignore[arg-type]
        except EspnSchemaError as exc:
            errors.append(exc)
            continue
        if status_name is not None:
            unknown.append(status_name)
        if "neutralSite" not in event["competitions"][0]:  # parse_event read both: a list with a mapping
            no_site.append(game.game_id)
        games.append(game)
    return ParsedScoreboard(sport=sport, games=games, errors=errors, unknown_statuses=unknown,  # type: ignore[arg-type]
                            missing_neutral_site=no_site)


def parse_event(event: Any, sport: Sport, *, path: str = "event") -> tuple[GameState, str | None]:
    """One `events[]` entry -> (GameState, unknown status name or None)."""
    reader = _Reader(sport, path)
    ev = reader.obj(event, "")
    game_id = reader.text(ev, "id")
    reader.game_id = game_id
    competitions = reader.list(ev, "competitions")
    if not competitions:
        raise reader.error("competitions", "empty list")
    comp = reader.obj(competitions[0], "competitions[0]")
    cpath = "competitions[0]"

    start_time = _parse_time(reader.text(ev, "date"), reader, "date")
    neutral_site = _neutral_site(comp, reader, cpath)
    competitors = reader.list(comp, "competitors", base=cpath)
    sides: dict[str, dict[str, Any]] = {}
    for i, competitor in enumerate(competitors):
        c = reader.obj(competitor, f"{cpath}.competitors[{i}]")
        home_away = reader.text(c, "homeAway", base=f"{cpath}.competitors[{i}]")
        if home_away not in ("home", "away"):
            raise reader.error(f"{cpath}.competitors[{i}].homeAway", f"{home_away!r} is not home/away")
        sides[home_away] = {"raw": c, "path": f"{cpath}.competitors[{i}]"}
    for needed in ("home", "away"):
        if needed not in sides:
            raise reader.error(f"{cpath}.competitors", f"no {needed} competitor")

    status_obj = reader.obj(comp.get("status", ev.get("status")), f"{cpath}.status")
    type_obj = reader.obj(status_obj.get("type"), f"{cpath}.status.type")
    status_name = str(type_obj.get("name", ""))
    status, unknown_status = _map_status(status_name, type_obj, reader)

    teams: dict[str, dict[str, Any]] = {}
    for side, entry in sides.items():
        c, cp = entry["raw"], entry["path"]
        team = reader.obj(c.get("team"), f"{cp}.team")
        teams[side] = {
            "id": reader.text(team, "id", base=f"{cp}.team"),
            "abbr": reader.text(team, "abbreviation", base=f"{cp}.team"),
            "name": str(team.get("displayName") or team.get("name") or team.get("abbreviation")),
            "score": _score(c.get("score"), status, reader, f"{cp}.score"),
        }

    period = _int_field(status_obj.get("period", 0), reader, f"{cpath}.status.period", minimum=0)
    display_clock = str(status_obj.get("displayClock") or "")
    clock_exact = _clock_exact(status_obj.get("clock"), display_clock, reader, f"{cpath}.status.clock")
    # whole seconds, rounded up: 0.4 s left is still time left (the exact value goes to metadata)
    clock = int(clock_exact.to_integral_value(rounding=ROUND_CEILING)) if clock_exact is not None else None

    situation = comp.get("situation")
    if situation is not None and not isinstance(situation, dict):
        raise reader.error(f"{cpath}.situation", f"expected an object, got {type(situation).__name__}")
    situation = situation or {}
    spath = f"{cpath}.situation"

    possession = _possession(situation.get("possession"), teams, reader, f"{spath}.possession")

    down = _opt_int(situation.get("down"), reader, f"{spath}.down")
    distance = _opt_int(situation.get("distance"), reader, f"{spath}.distance")
    yard_line = _opt_int(situation.get("yardLine"), reader, f"{spath}.yardLine")
    if down is not None and down <= 0:  # ESPN sends -1 between plays: no down is set, not an error
        down, distance = None, None
    if distance is not None and distance < 0:
        distance = None
    if yard_line is not None and not 0 <= yard_line <= 100:
        yard_line = None
    yards_to_goal = _yards_to_goal(situation.get("possessionText"), possession, teams)

    metadata: dict[str, Any] = {}
    prob = _win_probability(situation, reader, spath)
    if prob:
        metadata["espn_win_probability"] = prob
    metadata.update(_last_play(situation.get("lastPlay"), sport, teams))
    odds = _pregame_odds(comp.get("odds"), teams)
    if odds:
        metadata["pregame_odds"] = odds
    for key_src, key_dst in (
        ("downDistanceText", "down_distance_text"),
        ("possessionText", "possession_text"),
        ("isRedZone", "is_red_zone"),
    ):
        if key_src in situation:
            metadata[key_dst] = situation[key_src]
    if sport == "mlb":
        for key in ("balls", "strikes", "outs", "onFirst", "onSecond", "onThird"):
            if key in situation:
                metadata[key] = situation[key]
    if unknown_status is not None:
        metadata["espn_status_name"] = status_name
    season_type, season_number = _season_type(ev, comp, sport, reader, cpath)
    if season_type is not None:
        metadata["season_type"] = season_type
    elif season_number is not None:
        metadata["espn_season_type"] = season_number  # a type number we do not know: kept, no rule applied
    if clock_exact is not None and clock_exact != clock_exact.to_integral_value():
        metadata["clock_exact"] = clock_exact

    return (
        GameState(
            sport=sport,
            game_id=game_id,
            start_time=start_time,
            name=str(ev.get("name") or ""),
            short_name=str(ev.get("shortName") or ""),
            home_team=teams["home"]["abbr"],
            away_team=teams["away"]["abbr"],
            home_team_id=teams["home"]["id"],
            away_team_id=teams["away"]["id"],
            home_team_name=teams["home"]["name"],
            away_team_name=teams["away"]["name"],
            status=status,
            status_detail=str(type_obj.get("shortDetail") or type_obj.get("detail") or ""),
            period=period,
            clock_seconds=clock,
            display_clock=display_clock,
            home_score=teams["home"]["score"],
            away_score=teams["away"]["score"],
            possession=possession,
            down=down,
            distance=distance,
            yard_line=yard_line,
            yards_to_goal=yards_to_goal,
            home_timeouts=_opt_int(situation.get("homeTimeouts"), reader, f"{spath}.homeTimeouts"),
            away_timeouts=_opt_int(situation.get("awayTimeouts"), reader, f"{spath}.awayTimeouts"),
            neutral_site=neutral_site,
            metadata=metadata,
        ),
        unknown_status,
    )


class _Reader:
    """Typed field access that raises EspnSchemaError with the full JSON path."""

    def __init__(self, sport: str, base: str) -> None:
        self.sport = sport
        self.base = base
        self.game_id: str | None = None

    def _path(self, rel: str) -> str:
        return f"{self.base}.{rel}" if rel else self.base

    def error(self, rel: str, problem: str) -> EspnSchemaError:
        return EspnSchemaError(self.sport, self._path(rel), problem, game_id=self.game_id)

    def obj(self, value: Any, rel: str) -> dict[str, Any]:
        if value is None:
            raise self.error(rel, "missing")
        if not isinstance(value, dict):
            raise self.error(rel, f"expected an object, got {type(value).__name__}")
        return value

    def list(self, parent: Mapping[str, Any], key: str, *, base: str = "") -> list[Any]:
        rel = f"{base}.{key}" if base else key
        value = parent.get(key)
        if value is None:
            raise self.error(rel, "missing")
        if not isinstance(value, list):
            raise self.error(rel, f"expected a list, got {type(value).__name__}")
        return value

    def text(self, parent: Mapping[str, Any], key: str, *, base: str = "") -> str:
        rel = f"{base}.{key}" if base else key
        value = parent.get(key)
        if value is None or value == "":
            raise self.error(rel, "missing")
        if isinstance(value, dict | list | bool):
            raise self.error(rel, f"expected text, got {type(value).__name__}")
        return str(value)


def _parse_time(text: str, reader: _Reader, rel: str) -> datetime:
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise reader.error(rel, f"{text!r} is not an ISO-8601 time") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _neutral_site(comp: Mapping[str, Any], reader: _Reader, cpath: str) -> bool:
    """`competitions[0].neutralSite`: ESPN sends it for every game (true for bowls, international games, Super
    Bowls). A non-boolean value rejects the game (drift). A missing one is drift too, but the game is kept, read
    as a home game, and reported (`ParsedScoreboard.missing_neutral_site`): refusing every state of every game
    because one site flag went away would leave the engine blind to scores and clocks."""
    value = comp.get("neutralSite")
    if value is None:
        return False
    if not isinstance(value, bool):
        raise reader.error(f"{cpath}.neutralSite", f"{value!r} is not a JSON boolean")
    return value


# ESPN `season.type` numbers (the league calendars' "Preseason" / "Regular Season" / "Postseason")
_SEASON_TYPES: dict[int, str] = {1: "preseason", 2: "regular", 3: "playoffs"}
# the postseason game that decides the title, by its `competitions[0].notes[].headline`: only the final itself
# ("AFC Championship", "SEC Championship", "East Finals - Game 1", "ALCS - Game 1" are playoff games)
_CHAMPIONSHIP_HEADLINES: dict[str, re.Pattern[str]] = {
    "nfl": re.compile(r"^\s*super bowl\b", re.IGNORECASE),  # "Super Bowl LX"
    "ncaaf": re.compile(r"\bnational championship\b", re.IGNORECASE),  # "College Football Playoff National ..."
    "nba": re.compile(r"^\s*nba finals\b", re.IGNORECASE),  # "NBA Finals - Game 4"
    "mlb": re.compile(r"^\s*world series\b", re.IGNORECASE),  # "World Series - Game 7"
}


def _season_type(ev: Mapping[str, Any], comp: Mapping[str, Any], sport: str, reader: _Reader,
                 cpath: str) -> tuple[str | None, int | None]:
    """(season_type, ESPN's type number) of one event: "preseason", "regular", "playoffs" or "championship".

    From `season.type` (1 pre, 2 regular, 3 post); a postseason game is the "championship" when one of its
    `competitions[0].notes[].headline` names the sport's final. A missing `season` block or type is unknown
    (None: no special-event rule; ESPN sends it on every event of the samples, and dropping a game's scores for
    it would blind the engine); a present but malformed one is a schema error like the other fields. A type
    number outside 1-3 (ESPN's off-season 4, and others) is returned as the number alone."""
    season = ev.get("season")
    if season is None:
        return None, None
    if not isinstance(season, dict):
        raise reader.error("season", f"expected an object, got {type(season).__name__}")
    raw = season.get("type")
    if raw is None or raw == "":
        return None, None
    number = _int_field(raw, reader, "season.type")
    kind = _SEASON_TYPES.get(number)
    if kind == "playoffs" and _is_championship(comp, sport, reader, cpath):
        kind = "championship"
    return kind, number


def _is_championship(comp: Mapping[str, Any], sport: str, reader: _Reader, cpath: str) -> bool:
    """Whether a postseason game's notes name the sport's final; notes are read (and checked) only here."""
    notes = comp.get("notes")
    if notes is None:
        return False
    if not isinstance(notes, list):
        raise reader.error(f"{cpath}.notes", f"expected a list, got {type(notes).__name__}")
    pattern = _CHAMPIONSHIP_HEADLINES.get(sport)
    found = False
    for i, note in enumerate(notes):
        if not isinstance(note, dict):
            raise reader.error(f"{cpath}.notes[{i}]", f"expected an object, got {type(note).__name__}")
        headline = note.get("headline")
        if headline is None:
            continue
        if not isinstance(headline, str):
            raise reader.error(f"{cpath}.notes[{i}].headline", f"expected text, got {type(headline).__name__}")
        found = found or (pattern is not None and pattern.search(headline) is not None)
    return found


def _map_status(name: str, type_obj: Mapping[str, Any], reader: _Reader) -> tuple[GameStatus, str | None]:
    if name in _STATUS_BY_NAME:
        return _STATUS_BY_NAME[name], None
    state = type_obj.get("state")
    if state in _STATUS_BY_STATE:
        # an unknown name with a known state is usable, but reported as drift
        return _STATUS_BY_STATE[str(state)], name or "<empty>"
    raise reader.error("competitions[0].status.type", f"unknown status name {name!r} and state {state!r}")


def _score(value: Any, status: GameStatus, reader: _Reader, rel: str) -> int:
    if value is None or value == "":
        if status in ("scheduled", "postponed", "cancelled"):
            return 0
        raise reader.error(rel, "missing for a game that has started")
    if isinstance(value, dict):  # some ESPN endpoints nest {"value": 17.0, "displayValue": "17"}
        value = value.get("displayValue", value.get("value"))
    return _int_field(value, reader, rel, minimum=0)


def _int_field(value: Any, reader: _Reader, rel: str, *, minimum: int | None = None) -> int:
    if isinstance(value, bool):
        raise reader.error(rel, f"{value!r} is not an integer")
    try:
        number = Decimal(str(value).strip()) if isinstance(value, str | int | Decimal) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite() or number != number.to_integral_value():
        raise reader.error(rel, f"{value!r} is not an integer")
    result = int(number)
    if minimum is not None and result < minimum:
        raise reader.error(rel, f"{result} is below {minimum}")
    return result


def _opt_int(value: Any, reader: _Reader, rel: str) -> int | None:
    if value is None or value == "":
        return None
    return _int_field(value, reader, rel)


def _clock_exact(value: Any, display: str, reader: _Reader, rel: str) -> Decimal | None:
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        seconds = Decimal(value)
    elif isinstance(value, str) and value.strip():
        try:
            seconds = Decimal(value.strip())
        except InvalidOperation as exc:
            raise reader.error(rel, f"{value!r} is not a number of seconds") from exc
    elif value is None:
        match = _CLOCK_RE.match(display) if display else None
        if match is None:
            return None
        minutes = int(match.group(1) or 0)
        seconds = Decimal(minutes * 60) + Decimal(match.group(2))
    else:
        raise reader.error(rel, f"{value!r} is not a number of seconds")
    if not seconds.is_finite() or seconds < 0:
        raise reader.error(rel, f"{value!r} is not a valid clock")
    return seconds


def _possession(value: Any, teams: Mapping[str, Mapping[str, Any]], reader: _Reader, rel: str) -> Side | None:
    """ESPN's team id of the side with the ball -> 'home'/'away'; absent -> None; any other id is a schema error
    (a guessed None would let the models read a wrong game state)."""
    if value is None or value == "":
        return None
    if str(value) == teams["home"]["id"]:
        return "home"
    if str(value) == teams["away"]["id"]:
        return "away"
    raise reader.error(rel, f"{value!r} is neither the home team id {teams['home']['id']!r} "
                            f"nor the away team id {teams['away']['id']!r}")


def _yards_to_goal(text: Any, possession: Side | None, teams: Mapping[str, Mapping[str, Any]]) -> int | None:
    """'DEN 20' with DEN in possession -> 80 (own 20); with the other side in possession -> 20; '50' -> 50."""
    if not isinstance(text, str) or possession is None:
        return None
    parts = text.split()
    try:
        number = int(parts[-1])
    except (ValueError, IndexError):
        return None
    if not 0 <= number <= 50:
        return None
    if len(parts) == 1:
        return number if number == 50 else None
    side_abbr = " ".join(parts[:-1])
    if side_abbr == teams[possession]["abbr"]:
        return 100 - number
    other = "away" if possession == "home" else "home"
    if side_abbr == teams[other]["abbr"]:
        return number
    return None


def _win_probability(situation: Mapping[str, Any], reader: _Reader, spath: str) -> dict[str, Decimal]:
    last_play = situation.get("lastPlay")
    if not isinstance(last_play, dict):
        return {}
    prob = last_play.get("probability")
    if not isinstance(prob, dict):
        return {}
    out: dict[str, Decimal] = {}
    for src, dst in (("homeWinPercentage", "home"), ("awayWinPercentage", "away"), ("tiePercentage", "tie")):
        value = prob.get(src)
        if value is None:
            continue
        try:
            number = Decimal(str(value))
        except InvalidOperation as exc:
            raise reader.error(f"{spath}.lastPlay.probability.{src}", f"{value!r} is not a number") from exc
        if not number.is_finite() or not Decimal(0) <= number <= Decimal(1):
            raise reader.error(f"{spath}.lastPlay.probability.{src}", f"{value!r} is outside [0, 1]")
        out[dst] = q4(number)
    return out


# ESPN `lastPlay.type.text` -> the live_trading trigger name (trade_strategies.yaml `trigger_events`). Football
# only (an NBA "Jump Shot" is no trigger). Exact texts first, then patterns in order. A touchdown scored on a
# turnover ("Interception Return Touchdown", "Fumble Return Touchdown") is a touchdown: the score moves the win
# probability more than the change of possession. fourth_down_conversion / fourth_down_fail are not in this table:
# the type text of a fourth-down play ("Rush", "Pass Reception") does not tell the down it was run on; they are
# derived from the game's stored history (fourth_down_outcome, called by precog.trading.snapshot.load_games).
_TRIGGER_BY_TEXT: dict[str, str] = {
    "field goal good": "field_goal",
    "interception": "turnover",
    "pass interception return": "turnover",
    "interception return": "turnover",
    "fumble recovery (opponent)": "turnover",
    "sack opp fumble recovery": "turnover",
    "muffed punt recovery (opponent)": "turnover",
    "safety": "safety",
    "two-minute warning": "two_minute_warning",
    "two minute warning": "two_minute_warning",
}
_TOUCHDOWN = re.compile(r"\btouchdown\b", re.IGNORECASE)  # "Passing Touchdown", "Punt Return Touchdown", ...
_TURNOVER = re.compile(r"\binterception\b|\brecovery \(opponent\)", re.IGNORECASE)  # texts the table lacks
_TRIGGER_SPORTS = frozenset({"nfl", "ncaaf"})
# Play type texts (normalised like _TRIGGER_BY_TEXT) that are no fourth-down *attempt* even when snapped on fourth
# down: punts and field goal tries (good, missed, blocked, returned), no-plays (timeouts, penalties, the two-minute
# warning, ends of periods) and the kicks and tries that never follow a fourth-down situation (kickoffs, extra
# points, two-point tries, the coin toss). A safety on fourth down is nearly always a punt-formation play, so it is
# left out too rather than read as a failed attempt. Any other text (a run, a pass, a sack, a fake) is an attempt.
_NOT_A_FOURTH_DOWN_ATTEMPT = frozenset({
    "punt", "blocked punt", "punt return touchdown", "blocked punt touchdown", "punt team fumble lost",
    "punt team fumble recovery", "punt team fumble recovery touchdown", "muffed punt recovery (opponent)",
    "muffed punt recovery (own)",
    "field goal good", "field goal missed", "blocked field goal", "field goal blocked",
    "blocked field goal touchdown", "missed field goal return", "missed field goal return touchdown",
    "timeout", "official timeout", "penalty", "two-minute warning", "two minute warning",
    "end period", "end of period", "end of quarter", "end of half", "end of game", "end of regulation",
    "kickoff", "kickoff return (offense)", "kickoff return touchdown", "on-side kick", "onside kick",
    "extra point good", "extra point missed", "blocked pat", "two point pass", "two point rush",
    "two-point conversion", "defensive 2pt conversion", "coin toss", "safety",
})
FOURTH_DOWN_CONVERSION = "fourth_down_conversion"
FOURTH_DOWN_FAIL = "fourth_down_fail"


def trigger_of(sport: str, type_text: str) -> str | None:
    """The live_trading trigger name of an ESPN play type text, None when the play is none of them."""
    if sport not in _TRIGGER_SPORTS:
        return None
    if _TOUCHDOWN.search(type_text):  # checked first: a touchdown wins over the turnover it was scored on
        return "touchdown"
    exact = _TRIGGER_BY_TEXT.get(_norm(type_text))
    if exact is not None:
        return exact
    return "turnover" if _TURNOVER.search(type_text) else None


def _norm(type_text: str) -> str:
    return " ".join(type_text.split()).lower()


def is_fourth_down_attempt(sport: str, type_text: str) -> bool:
    """Whether a football play of this type text, snapped on fourth down, tried for the first down (a run, a
    pass, a sack, a fake) rather than kicking or not being a play (_NOT_A_FOURTH_DOWN_ATTEMPT)."""
    return sport in _TRIGGER_SPORTS and bool(type_text.strip()) and _norm(type_text) not in _NOT_A_FOURTH_DOWN_ATTEMPT


@dataclass(frozen=True, slots=True)
class Situation:
    """What one stored game_states version says: ESPN's down and possession describe the NEXT snap."""

    down: int | None
    possession: Side | None
    home_score: int
    away_score: int


def fourth_down_outcome(sport: str, before: Situation | None, after: Situation,
                        last_play: Mapping[str, Any]) -> str | None:
    """fourth_down_conversion / fourth_down_fail of the current last play, or None when it was no fourth-down
    attempt or the outcome is not known. `before`: the version stored right before the first one carrying the
    play (its down and possession are the play's); `after`: the current version; `last_play`: its metadata.

    A touchdown is decided by who scored: the team with the ball (conversion) or its opponent (fail, a return
    touchdown). Otherwise the team with the ball keeping it on a 1st down is a conversion, the other team having
    it is a fail (on downs or a turnover); ESPN's drive result "DOWNS" also makes a fail when the possession after
    the play is not reported, and vetoes a conversion. Nothing is guessed: no earlier version, a down other than
    4, an unknown possession, a play run by the other team (two plays between polls), a score change on a play
    that is no touchdown -> None."""
    text = last_play.get("last_play_text")
    if before is None or before.down != 4 or before.possession is None:
        return None
    if not isinstance(text, str) or not is_fourth_down_attempt(sport, text):
        return None
    offense = before.possession
    ran_by = last_play.get("last_play_possession")
    if ran_by in ("home", "away") and ran_by != offense:
        return None  # the play was the other team's: an earlier play (a punt?) between polls had the fourth down
    scored = {"home": after.home_score - before.home_score, "away": after.away_score - before.away_score}
    defense = "away" if offense == "home" else "home"
    drive_result = last_play.get("last_play_drive_result")
    on_downs = isinstance(drive_result, str) and _norm(drive_result) == "downs"
    if last_play.get("last_play_type") == "touchdown":
        if scored[offense] >= 6 and scored[defense] == 0:
            return FOURTH_DOWN_CONVERSION
        if scored[defense] >= 6 and scored[offense] == 0:
            return FOURTH_DOWN_FAIL
        return None  # the score not (yet) showing who scored
    if scored[offense] or scored[defense]:
        return None
    if after.possession == defense or (after.possession is None and on_downs):
        return FOURTH_DOWN_FAIL
    if after.possession == offense and after.down == 1 and not on_downs:
        return FOURTH_DOWN_CONVERSION
    return None


def _last_play(last_play: Any, sport: str, teams: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """`situation.lastPlay` -> last_play_id, last_play_text (ESPN's type text as is) and last_play_type (the
    trigger name, absent when none); for football also last_play_drive_result (`drive.result` as sent: "PUNT",
    "DOWNS", "TD", ...) and last_play_possession ('home'/'away': `start.team.id`, the team with the ball at the
    snap). lastPlay is optional in ESPN's feed: a malformed one (not an object, no usable id) adds nothing, and a
    malformed drive or start team adds nothing, rather than failing the game."""
    if not isinstance(last_play, dict):
        return {}
    play_id = last_play.get("id")
    if isinstance(play_id, bool) or not isinstance(play_id, str | int) or not str(play_id).strip():
        return {}
    out = {"last_play_id": str(play_id).strip()}
    play_type = last_play.get("type")
    text = play_type.get("text") if isinstance(play_type, dict) else None
    if isinstance(text, str) and text.strip():
        out["last_play_text"] = text
        trigger = trigger_of(sport, text)
        if trigger is not None:
            out["last_play_type"] = trigger
    if sport in _TRIGGER_SPORTS:
        drive = last_play.get("drive")
        result = drive.get("result") if isinstance(drive, dict) else None
        if isinstance(result, str) and result.strip():
            out["last_play_drive_result"] = result.strip()
        start = last_play.get("start")
        team = start.get("team") if isinstance(start, dict) else None
        team_id = team.get("id") if isinstance(team, dict) else None
        if isinstance(team_id, str | int) and not isinstance(team_id, bool):
            side = next((s for s in ("home", "away") if str(team_id).strip() == teams[s]["id"]), None)
            if side is not None:  # an id of neither team is left out: lastPlay is optional, never a schema error
                out["last_play_possession"] = side
    return out


def _pregame_odds(odds: Any, teams: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """ESPN `odds[0]` (two layouts seen: NFL's `homeTeamOdds.moneyLine`, NBA's `moneyline.home.close.odds`)."""
    if not isinstance(odds, list) or not odds or not isinstance(odds[0], dict):
        return {}
    o = odds[0]
    out: dict[str, Any] = {}
    provider = o.get("provider")
    if isinstance(provider, dict) and provider.get("name"):
        out["provider"] = str(provider["name"])
    if o.get("details") is not None:
        out["details"] = str(o["details"])
    for src, dst in (("spread", "home_spread"), ("overUnder", "over_under")):
        number = _decimal_or_none(o.get(src))
        if number is not None:
            out[dst] = number
    for side in ("home", "away"):
        ml = None
        team_odds = o.get(f"{side}TeamOdds")
        if isinstance(team_odds, dict):
            ml = _american(team_odds.get("moneyLine"))
            if team_odds.get("favorite") is True:
                out["favorite"] = side
        moneyline = o.get("moneyline")
        if ml is None and isinstance(moneyline, dict):
            side_obj = moneyline.get(side)
            close = side_obj.get("close") if isinstance(side_obj, dict) else None
            if isinstance(close, dict):
                ml = _american(close.get("odds"))
        if ml is not None:
            out[f"{side}_moneyline"] = ml
    home_ml, away_ml = out.get("home_moneyline"), out.get("away_moneyline")
    if home_ml is not None and away_ml is not None:
        home_raw, away_raw = _implied(home_ml), _implied(away_ml)
        out["home_implied_probability"] = q4(home_raw / (home_raw + away_raw))  # vig removed
    return out


def _decimal_or_none(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool | dict | list):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _american(value: Any) -> int | None:
    """American odds '+130' / -360 / 'EVEN' -> int (EVEN = +100)."""
    if isinstance(value, str) and value.strip().upper() in ("EVEN", "EV"):
        return 100
    number = _decimal_or_none(value)
    if number is None or number == 0 or number != number.to_integral_value() or abs(number) < 100:
        return None
    return int(number)


def _implied(american: int) -> Decimal:
    a = Decimal(american)
    return Decimal(100) / (a + 100) if a > 0 else -a / (-a + 100)
