"""Team codes: the 32 current NFL franchises and how other sources spell them.

538's games file codes franchises by their current identity except Washington (WSH) and the Raiders
(OAK); nflfastR writes the Rams as LA. Historic franchises that no longer exist keep their own codes.
"""

from __future__ import annotations

NFL_TEAM_CODES: frozenset[str] = frozenset({
    "ARI", "ATL", "BAL", "BUF", "CAR", "CHI", "CIN", "CLE", "DAL", "DEN", "DET", "GB", "HOU", "IND", "JAX", "KC",
    "LAC", "LAR", "LV", "MIA", "MIN", "NE", "NO", "NYG", "NYJ", "PHI", "PIT", "SEA", "SF", "TB", "TEN", "WAS",
})

# Other spellings of a current franchise -> the code used in the `teams` table.
NFL_ALIASES: dict[str, str] = {
    "WSH": "WAS",  # 538
    "OAK": "LV",  # 538, nflfastR before 2020
    "LA": "LAR",  # nflfastR
    "STL": "LAR",
    "SD": "LAC",
    "JAC": "JAX",
    "ARZ": "ARI",
    "BLT": "BAL",
    "CLV": "CLE",
    "HST": "HOU",
}


def canonical_team(code: str, sport: str = "nfl") -> str:
    """The `teams.team_code` for a source's team code (unchanged when it is not a known alias)."""
    code = code.strip().upper()
    if sport == "nfl":
        return NFL_ALIASES.get(code, code)
    return code


def is_current_nfl_team(code: str) -> bool:
    return canonical_team(code, "nfl") in NFL_TEAM_CODES
