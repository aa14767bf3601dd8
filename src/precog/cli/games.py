"""`precog games`: the current state of every ingested game and the venue events linked to it."""

from __future__ import annotations

from typing import Any

import typer
from psycopg.rows import dict_row

from precog.cli.errors import UserError
from precog.cli.output import print_json, print_table
from precog.db.connection import connect
from precog.db.migrate import ensure_migrated
from precog.feeds.game_state import SPORTS
from precog.ingest.game_store import from_row


def register(app: typer.Typer) -> None:
    app.command("games")(games)


def games(
    live: bool = typer.Option(False, "--live", help="Only games in progress (live or halftime)."),
    sport: str | None = typer.Option(None, "--sport", help=f"Only this sport ({', '.join(SPORTS)})."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (Decimals as strings)."),
) -> None:
    """Show ingested games (latest state from ESPN) with the Kalshi events and markets linked to each.

    Example: precog games --live --json
    """
    if sport is not None and sport.lower() not in SPORTS:
        raise UserError(f"--sport: unknown sport {sport!r}; expected one of {', '.join(SPORTS)}")
    url = ensure_migrated()
    with connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT g.*, COALESCE(l.links, '[]'::jsonb) AS links FROM game_states g"
            " LEFT JOIN LATERAL ("
            "   SELECT jsonb_agg(jsonb_build_object('event_id', gl.event_id, 'match_method', gl.match_method,"
            "     'markets', (SELECT COALESCE(jsonb_object_agg(glm.market_id, glm.side), '{}'::jsonb)"
            "                 FROM game_link_markets glm WHERE glm.event_id = gl.event_id))"
            "     ORDER BY gl.event_id) AS links"
            "   FROM game_links gl WHERE gl.sport = g.sport AND gl.external_game_id = g.external_game_id) l ON TRUE"
            " WHERE g.row_current_ind"
            " AND (%(sport)s::text IS NULL OR g.sport = %(sport)s)"
            " AND (NOT %(live)s OR g.status IN ('live', 'halftime'))"
            " ORDER BY g.start_time, g.sport, g.external_game_id",
            {"sport": sport.lower() if sport else None, "live": live},
        )
        rows = cur.fetchall()
    out = [_game_json(row) for row in rows]
    if as_json:
        print_json(out)
        return
    if not out:
        typer.echo("no games" + (" in progress" if live else "") + " (run `precog ingest run` to ingest ESPN data)")
        return
    print_table(
        f"{'Live games' if live else 'Games'} ({len(out)})",
        ["sport", "game", "matchup", "status", "period", "clock", "score", "poss", "updated", "kalshi events"],
        ([g["sport"], g["game_id"], f"{g['away_team']} @ {g['home_team']}", g["status"], g["period_label"],
          g["display_clock"], f"{g['away_score']}-{g['home_score']}", g["possession"] or "",
          g["updated_at"][11:19] if g["updated_at"] else "",
          ", ".join(link["event_id"] for link in g["kalshi_events"])] for g in out),
    )


def _game_json(row: dict[str, Any]) -> dict[str, Any]:
    state = from_row(row)
    data = state.to_json()
    data["period_label"] = row["period_label"]
    data["updated_at"] = row["source_updated_at"].isoformat() if row["source_updated_at"] else None
    data["version_started_at"] = row["created_at"].isoformat()
    data["kalshi_events"] = row["links"]
    return data
