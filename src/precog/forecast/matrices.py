"""Historical probability matrices (spec 7.2): how often a team in a given situation went on to win.

Built from the plays file (score at the end of each quarter / at halftime) and, when given, a scores file
with closing point spreads (pre-game favourite by spread). Stored in `probability_matrices`, one row per
(state_descriptor, value_bucket, situational_factors) cell with a 95% Wilson interval and sample size.

Cells are from the leader's side: `win_probability` = P(the leading team wins). For the `tied` bucket it
is P(home team wins). Ties count as half a win.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from precog.domain.money import q4
from precog.forecast.csvio import CsvTable
from precog.forecast.errors import ForecastError, InputFileError
from precog.forecast.plays import Plays
from precog.forecast.teams import canonical_team

GAME_STATE_MATRIX = "nfl_game_state"
SPREAD_MATRIX = "nfl_pregame_spread"
CATEGORY, SUBCATEGORY = "sports", "nfl"
Z95 = 1.959963984540054

# state descriptor -> the quarter whose first play carries the score at that moment
BOUNDARIES: dict[str, int] = {"end_Q1": 2, "halftime": 3, "end_Q3": 4}
LEAD_BUCKETS: tuple[tuple[str, int, int], ...] = (
    ("1-3_points", 1, 3), ("4-6_points", 4, 6), ("7-9_points", 7, 9), ("10-13_points", 10, 13),
    ("14-16_points", 14, 16), ("17+_points", 17, 999),
)
CUMULATIVE_BUCKETS: tuple[tuple[str, int], ...] = (
    ("any_lead", 1), ("3+_points", 3), ("7+_points", 7), ("10+_points", 10), ("17+_points_or_more", 17),
)
SPREAD_BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("favorite_0.5-2.5_points", 0.5, 2.5), ("favorite_3_points", 3, 3), ("favorite_3.5-6.5_points", 3.5, 6.5),
    ("favorite_7_points", 7, 7), ("favorite_7.5-9.5_points", 7.5, 9.5), ("favorite_10_points", 10, 10),
    ("favorite_10.5-13.5_points", 10.5, 13.5), ("favorite_14_points", 14, 14), ("favorite_14.5+_points", 14.5, 99),
)


@dataclass(frozen=True)
class Benchmark:
    """A published reference number (spec 7.2) to show next to what our data says."""

    label: str
    state_descriptor: str
    value_bucket: str
    expected: str  # as published: a number or a range
    low: float
    high: float
    invert: bool = False  # the benchmark is for the trailing team: compare with 1 - P(leader)
    published_n: int | None = None


SPEC_BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark("halftime leader wins", "halftime", "any_lead", "77.4%", 0.774, 0.774),
    Benchmark("halftime leading 3+", "halftime", "3+_points", "56-60%", 0.56, 0.60),
    Benchmark("halftime leading 7+", "halftime", "7+_points", "78-82%", 0.78, 0.82),
    # the spec's 3+ / 7+ ranges read like leads of 1-3 and 7-9 points (a 3+ lead cannot win less often than
    # any lead): shown against those buckets too
    Benchmark("halftime leading 1-3 (spec '3+' range)", "halftime", "1-3_points", "56-60%", 0.56, 0.60),
    Benchmark("halftime leading 7-9 (spec '7+' range)", "halftime", "7-9_points", "78-82%", 0.78, 0.82),
    Benchmark("halftime leading 10+", "halftime", "10+_points", "89.5%", 0.895, 0.895, published_n=1250),
    Benchmark("halftime trailing 10+", "halftime", "10+_points", "10.48%", 0.1048, 0.1048, invert=True),
    Benchmark("halftime trailing 17+", "halftime", "17+_points_or_more", "6.38%", 0.0638, 0.0638, invert=True,
              published_n=486),
    Benchmark("spread favourite by 3", "pregame", "favorite_3_points", "59.4%", 0.594, 0.594),
    Benchmark("spread favourite by 7", "pregame", "favorite_7_points", "75.2%", 0.752, 0.752),
    Benchmark("spread favourite by 10", "pregame", "favorite_10_points", "83.6%", 0.836, 0.836),
    Benchmark("spread favourite by 14", "pregame", "favorite_14_points", "92.4%", 0.924, 0.924),
)


@dataclass
class Cell:
    state_descriptor: str
    value_bucket: str
    situational_factors: dict[str, str]
    wins: float = 0.0  # ties count 0.5
    n: int = 0
    matrix_name: str = GAME_STATE_MATRIX
    source: str = "nflfastR"
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def probability(self) -> float:
        return self.wins / self.n if self.n else float("nan")

    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.wins, self.n)


def wilson_interval(wins: float, n: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (well-behaved near 0 and 1 and for small n)."""
    if n <= 0:
        return 0.0, 1.0
    p = wins / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def lead_bucket(lead: int) -> str:
    if lead == 0:
        return "tied"
    for name, lo, hi in LEAD_BUCKETS:
        if lo <= abs(lead) <= hi:
            return name
    raise ValueError(f"no bucket for lead {lead}")


def _boundary_states(plays: Plays) -> Iterable[tuple[str, str, int, float]]:
    """(descriptor, game_id, home lead, home outcome) for the first play after each quarter boundary."""
    if plays.home_final is None or plays.away_final is None:
        raise InputFileError(plays.path, "has no final scores (home_score, away_score): cannot build matrices")
    first: dict[tuple[str, int], int] = {}
    for i, (g, q) in enumerate(zip(plays.game_id, plays.qtr, strict=True)):
        key = (str(g), int(q))
        # the earliest play of the quarter (most time left) carries the score at the boundary
        if key not in first or plays.game_seconds[i] > plays.game_seconds[first[key]]:
            first[key] = i
    for descriptor, quarter in BOUNDARIES.items():
        for (g, q), i in first.items():
            if q != quarter:
                continue
            pos_home = bool(plays.posteam_is_home[i])
            home_lead = int(plays.score_diff[i] if pos_home else -plays.score_diff[i])
            diff = plays.home_final[i] - plays.away_final[i]
            home_outcome = 1.0 if diff > 0 else 0.0 if diff < 0 else 0.5
            yield descriptor, g, home_lead, home_outcome


def build_game_state_cells(plays: Plays) -> list[Cell]:
    cells: dict[tuple[str, str, tuple[tuple[str, str], ...]], Cell] = {}

    def add(descriptor: str, bucket: str, factors: dict[str, str], win: float) -> None:
        key = (descriptor, bucket, tuple(sorted(factors.items())))
        cell = cells.setdefault(key, Cell(descriptor, bucket, dict(factors)))
        cell.wins += win
        cell.n += 1

    games = set()
    for descriptor, g, home_lead, home_outcome in _boundary_states(plays):
        games.add(g)
        if home_lead == 0:
            add(descriptor, "tied", {}, home_outcome)
            continue
        leader = "home" if home_lead > 0 else "away"
        leader_win = home_outcome if home_lead > 0 else 1.0 - home_outcome
        lead = abs(home_lead)
        bucket = lead_bucket(lead)
        add(descriptor, bucket, {}, leader_win)
        add(descriptor, bucket, {"leader": leader}, leader_win)
        for name, minimum in CUMULATIVE_BUCKETS:
            if lead >= minimum:
                add(descriptor, name, {}, leader_win)
    if not cells:
        raise ForecastError(f"{plays.path}: no quarter boundaries found (is the file missing quarters 2-4?)")
    return sorted(cells.values(), key=lambda c: (c.state_descriptor, c.value_bucket, sorted(c.situational_factors.items())))


def build_spread_cells(path: Path | str, teams_file: Path | str | None = None) -> tuple[list[Cell], int]:
    """Favourite-by-spread cells from a spreadspoke scores file. Returns (cells, games skipped)."""
    table = CsvTable.read(path)
    table.require(("team_home", "team_away", "score_home", "score_away", "team_favorite_id", "spread_favorite"),
                  "to tabulate favourites by closing spread")
    names: dict[str, str] = {}
    if teams_file is not None:
        teams = CsvTable.read(teams_file)
        teams.require(("team_name", "team_id"), "to map team names to codes")
        for i in range(len(teams)):
            names[teams.text(i, "team_name")] = canonical_team(_spread_code(teams.text(i, "team_id")))
    cells: dict[str, Cell] = {}
    skipped = 0
    for i in range(len(table)):
        fav = table.text(i, "team_favorite_id")
        spread_text = table.text(i, "spread_favorite")
        if not fav or not spread_text or fav.upper() == "PICK":
            skipped += 1
            continue
        home_score = table.integer(i, "score_home", allow_empty=True)
        away_score = table.integer(i, "score_away", allow_empty=True)
        if home_score is None or away_score is None:
            skipped += 1
            continue
        spread = table.number(i, "spread_favorite")
        assert spread is not None
        fav_code = canonical_team(_spread_code(fav))
        home_code = names.get(table.text(i, "team_home"))
        away_code = names.get(table.text(i, "team_away"))
        if fav_code == home_code:
            margin = home_score - away_score
        elif fav_code == away_code:
            margin = away_score - home_score
        else:
            skipped += 1
            continue
        points = abs(spread)
        bucket = next((b for b, lo, hi in SPREAD_BUCKETS if lo <= points <= hi), None)
        if bucket is None:
            skipped += 1
            continue
        cell = cells.setdefault(bucket, Cell("pregame", bucket, {}, matrix_name=SPREAD_MATRIX, source="spreadspoke"))
        cell.wins += 1.0 if margin > 0 else 0.0 if margin < 0 else 0.5
        cell.n += 1
    return [cells[b] for b, _, _ in SPREAD_BUCKETS if b in cells], skipped


def _spread_code(code: str) -> str:
    return {"LVR": "LV"}.get(code.strip().upper(), code.strip().upper())


METHODOLOGY = {
    GAME_STATE_MATRIX: ("Score at the first play of the next quarter (end_Q1, halftime, end_Q3) in the nflfastR plays; "
                        "win_probability = share of games the leading team won (tied bucket: the home team), "
                        "ties count 0.5; 95% Wilson interval."),
    SPREAD_MATRIX: ("Closing point spread of each game in the spreadspoke scores file; win_probability = share of "
                    "games the favourite won, ties 0.5; 95% Wilson interval."),
}


@dataclass(frozen=True)
class MatrixEntry:
    matrix_name: str
    version: str
    state_descriptor: str
    value_bucket: str
    situational_factors: dict[str, str]
    win_probability: Decimal
    ci_lower: Decimal
    ci_upper: Decimal
    sample_size: int
    source: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def cell_entry(cell: Cell, version: str) -> MatrixEntry:
    lo, hi = cell.interval()
    return MatrixEntry(cell.matrix_name, version, cell.state_descriptor, cell.value_bucket, cell.situational_factors,
                       q4(Decimal(repr(cell.probability))), q4(Decimal(repr(lo))), q4(Decimal(repr(hi))), cell.n,
                       cell.source)


def store(conn: psycopg.Connection[Any], cells: Sequence[Cell], version: str, *, replace: bool) -> int:
    """Write the cells of one matrix version in one transaction; refuses to overwrite unless `replace`."""
    names = sorted({c.matrix_name for c in cells})
    with conn.transaction():
        for name in names:
            existing = conn.execute("SELECT count(*) FROM probability_matrices WHERE matrix_name = %s AND version = %s",
                                    (name, version)).fetchone()
            if existing and existing[0]:
                if not replace:
                    raise ForecastError(f"matrix {name} {version} already exists ({existing[0]} cells); "
                                        "pass --replace to rebuild it or choose another --version")
                conn.execute("DELETE FROM probability_matrices WHERE matrix_name = %s AND version = %s", (name, version))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO probability_matrices (category, subcategory, version, state_descriptor, value_bucket, "
                "situational_factors, win_probability, confidence_interval_lower, confidence_interval_upper, "
                "sample_size, source, methodology, matrix_name, description) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [(CATEGORY, SUBCATEGORY, version, e.state_descriptor, e.value_bucket, Jsonb(e.situational_factors),
                  e.win_probability, e.ci_lower, e.ci_upper, e.sample_size, c.source, METHODOLOGY[c.matrix_name],
                  c.matrix_name, _describe(e)) for c in cells for e in [cell_entry(c, version)]],
            )
    return len(cells)


def _describe(e: MatrixEntry) -> str:
    who = "home team" if e.value_bucket == "tied" else "leading team"
    if e.state_descriptor == "pregame":
        who = "favourite"
    factors = ", ".join(f"{k}={v}" for k, v in sorted(e.situational_factors.items()))
    return f"P({who} wins) at {e.state_descriptor}, {e.value_bucket}" + (f" ({factors})" if factors else "")


def load(conn: psycopg.Connection[Any], *, version: str = "v1.0", matrix_name: str | None = None,
         state_descriptor: str | None = None, value_bucket: str | None = None) -> list[MatrixEntry]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT matrix_name, version, state_descriptor, value_bucket, situational_factors, win_probability, "
            "confidence_interval_lower, confidence_interval_upper, sample_size, source FROM probability_matrices "
            "WHERE category = %s AND subcategory = %s AND version = %s "
            "AND (%s::text IS NULL OR matrix_name = %s) AND (%s::text IS NULL OR state_descriptor = %s) "
            "AND (%s::text IS NULL OR value_bucket = %s) "
            "ORDER BY matrix_name, state_descriptor, value_bucket, situational_factors::text",
            (CATEGORY, SUBCATEGORY, version, matrix_name, matrix_name, state_descriptor, state_descriptor,
             value_bucket, value_bucket),
        )
        return [MatrixEntry(r["matrix_name"], r["version"], r["state_descriptor"], r["value_bucket"],
                            dict(r["situational_factors"] or {}), r["win_probability"],
                            r["confidence_interval_lower"], r["confidence_interval_upper"], r["sample_size"], r["source"])
                for r in cur.fetchall()]


def lookup(entries: Sequence[MatrixEntry], state_descriptor: str, value_bucket: str,
           situational_factors: dict[str, str] | None = None) -> MatrixEntry | None:
    """The cell for a state; falls back to the cell without factors when the factor cell is absent."""
    wanted = situational_factors or {}
    exact = [e for e in entries if e.state_descriptor == state_descriptor and e.value_bucket == value_bucket
             and e.situational_factors == wanted]
    if exact:
        return exact[0]
    plain = [e for e in entries if e.state_descriptor == state_descriptor and e.value_bucket == value_bucket
             and not e.situational_factors]
    return plain[0] if plain else None


@dataclass(frozen=True)
class BenchmarkRow:
    benchmark: Benchmark
    ours: float | None
    n: int
    ci: tuple[float, float] | None

    @property
    def difference(self) -> float | None:
        if self.ours is None:
            return None
        mid = (self.benchmark.low + self.benchmark.high) / 2
        return self.ours - mid


def compare_benchmarks(entries: Sequence[MatrixEntry]) -> list[BenchmarkRow]:
    rows = []
    for b in SPEC_BENCHMARKS:
        e = lookup(entries, b.state_descriptor, b.value_bucket)
        if e is None:
            rows.append(BenchmarkRow(b, None, 0, None))
            continue
        p, lo, hi = float(e.win_probability), float(e.ci_lower), float(e.ci_upper)
        if b.invert:
            p, lo, hi = 1 - p, 1 - hi, 1 - lo
        rows.append(BenchmarkRow(b, p, e.sample_size, (lo, hi)))
    return rows


def state_cell(period: int, clock_seconds: int | None, status: str, home_score: int, away_score: int
               ) -> tuple[str, str, dict[str, str]] | None:
    """The matrix cell of a live state at a quarter boundary (or halftime); None between boundaries."""
    if status == "halftime" or (period == 2 and clock_seconds == 0) or (period == 3 and clock_seconds == 900):
        descriptor = "halftime"
    elif (period == 1 and clock_seconds == 0) or (period == 2 and clock_seconds == 900):
        descriptor = "end_Q1"
    elif (period == 3 and clock_seconds == 0) or (period == 4 and clock_seconds == 900):
        descriptor = "end_Q3"
    else:
        return None
    lead = home_score - away_score
    if lead == 0:
        return descriptor, "tied", {}
    return descriptor, lead_bucket(lead), {"leader": "home" if lead > 0 else "away"}
