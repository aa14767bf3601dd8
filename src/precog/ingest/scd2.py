"""The one SCD2 writer used by every versioned table (markets, game_states, edges, positions, account_balance).

A batch is written set-based in one transaction: COPY into a temporary staging table, then ONE UPDATE
closes the current versions that the incoming rows change (the table's change rule) and ONE INSERT adds a
new version for every key left without a current one. Within one batch only the latest state of a key is
kept (batches are a flush interval apart); between batches every material change is a new version. A
snapshot older than the stored version of its key is stale and ignored.

Point-in-time reads return the version valid at T: created_at <= T < row_end_ts (or still current).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from precog.domain.jsonutil import dumps


@dataclass(frozen=True)
class SCD2Table:
    """How one versioned table is written.

    `change_predicate` is SQL over aliases `s` (incoming) and `c` (current) that is true when the incoming
    row is a new version; by default any difference in `compare_columns` (all value columns if empty)."""

    name: str
    key_columns: tuple[str, ...]
    value_columns: tuple[str, ...]
    compare_columns: tuple[str, ...] = ()
    change_predicate: str | None = None
    json_columns: frozenset[str] = field(default_factory=frozenset)
    id_column: str = "id"

    @property
    def columns(self) -> tuple[str, ...]:
        return self.key_columns + self.value_columns

    def predicate(self) -> sql.Composable:
        if self.change_predicate:
            return sql.SQL(self.change_predicate)  # a constant of our code, never user input
        cols = self.compare_columns or self.value_columns
        return sql.SQL(" OR ").join(
            sql.SQL("s.{c} IS DISTINCT FROM c.{c}").format(c=sql.Identifier(col)) for col in cols
        )


def _price_moved(col: str) -> str:
    # ADR-013 material change: |delta| >= 0.01 or |delta|/old >= 2%, or the value appeared/disappeared.
    return (f"(s.{col} IS DISTINCT FROM c.{col} AND (s.{col} IS NULL OR c.{col} IS NULL"
            f" OR abs(s.{col} - c.{col}) >= 0.01 OR (c.{col} > 0 AND abs(s.{col} - c.{col}) / c.{col} >= 0.02)))")


MARKET_PRICE_COLUMNS = ("yes_bid", "yes_ask", "no_bid", "no_ask", "last_price")
MARKET_MATERIAL_CHANGE = " OR ".join(
    [_price_moved(c) for c in MARKET_PRICE_COLUMNS]
    + [
        "(s.volume IS DISTINCT FROM c.volume AND (s.volume IS NULL OR c.volume IS NULL OR abs(s.volume - c.volume) >= 10))",
        "s.status IS DISTINCT FROM c.status",
        "s.result IS DISTINCT FROM c.result",
        "s.settlement_value IS DISTINCT FROM c.settlement_value",
        "s.close_time IS DISTINCT FROM c.close_time",
        "s.title IS DISTINCT FROM c.title",
    ]
)

MARKETS = SCD2Table(
    name="markets",
    key_columns=("market_id",),
    value_columns=(
        "platform_id", "event_id", "external_id", "ticker", "title", "subtitle", "market_type",
        "yes_bid", "yes_ask", "no_bid", "no_ask", "last_price", "yes_price", "no_price", "spread",
        "volume", "volume_24h", "open_interest", "liquidity", "tick_size", "notional_value",
        "open_time", "close_time", "expiration_time", "latest_expiration_time", "can_close_early",
        "status", "venue_status", "result", "settlement_value", "rules_primary", "metadata",
    ),
    change_predicate=MARKET_MATERIAL_CHANGE,
    json_columns=frozenset({"metadata"}),
)

GAME_STATES = SCD2Table(
    name="game_states",
    key_columns=("sport", "external_game_id"),
    value_columns=(
        "event_id", "home_team", "away_team", "home_score", "away_score", "period", "period_label",
        "clock_seconds", "time_remaining", "possession", "status", "start_time", "sport_metadata",
        "source_updated_at",
    ),
    compare_columns=(
        "event_id", "home_team", "away_team", "home_score", "away_score", "period", "period_label",
        "clock_seconds", "possession", "status", "start_time", "sport_metadata",
    ),
    json_columns=frozenset({"sport_metadata"}),
)

EDGES = SCD2Table(
    name="edges",
    key_columns=("edge_key",),
    value_columns=(
        "market_id", "market_version_id", "side", "probability_matrix_id", "strategy_id", "model_id",
        "method_id", "expected_value", "ev_pct", "true_win_probability", "market_implied_probability",
        "market_price", "fee_per_contract", "slippage", "confidence_level", "confidence_metrics",
        "recommended_action", "calculation_run_id",
    ),
    compare_columns=(
        "expected_value", "true_win_probability", "market_price", "confidence_level", "recommended_action",
        "strategy_id", "model_id", "method_id",
    ),
    json_columns=frozenset({"confidence_metrics"}),
)

ACCOUNT_BALANCE = SCD2Table(
    name="account_balance",
    key_columns=("platform_id", "mode"),
    value_columns=("balance", "portfolio_value", "currency"),
)

POSITIONS = SCD2Table(
    name="positions",
    key_columns=("position_id",),
    value_columns=(
        "market_id", "market_version_id", "platform_id", "event_id", "sport", "side", "mode", "entry_price",
        "quantity", "initial_quantity", "fees", "status", "current_price", "unrealized_pnl", "unrealized_pnl_pct",
        "realized_pnl", "target_price", "stop_loss_price", "trailing_stop_state", "exit_reason", "exit_priority",
        "exit_price", "strategy_id", "model_id", "method_id", "initial_order_id", "entry_time", "exit_time",
        "last_update", "last_check_time", "position_metadata",
    ),
    json_columns=frozenset({"trailing_stop_state", "position_metadata"}),
)


@dataclass(frozen=True)
class WriteResult:
    received: int
    versions_written: int
    keys_in_batch: int


def _ensure_stage(cur: psycopg.Cursor[Any], table: SCD2Table,
                  stage: sql.Identifier, col_ids: list[sql.Identifier], target: sql.Identifier) -> None:
    """The session's staging table (IF NOT EXISTS: a rolled-back batch may have taken it with it; every
    commit or rollback empties it)."""
    cur.execute(sql.SQL(
        "CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS "
        "SELECT {cols}, created_at, 0::bigint AS _seq FROM {target} WITH NO DATA"
    ).format(stage=stage, cols=sql.SQL(", ").join(col_ids), target=target))


def write_batch(conn: psycopg.Connection[Any], table: SCD2Table, rows: Sequence[Mapping[str, Any]],
                observed_at: datetime | Sequence[datetime] | None = None) -> WriteResult:
    """Write a batch of snapshots (dicts keyed by column name) as new versions where they changed.

    `observed_at` is the validity start of each row (one time for all, or one per row); default now().
    Runs inside a transaction (the caller's, or its own)."""
    if not rows:
        return WriteResult(0, 0, 0)
    times: list[datetime | None]
    if observed_at is None or isinstance(observed_at, datetime):
        times = [observed_at] * len(rows)
    else:
        times = list(observed_at)
        if len(times) != len(rows):
            raise ValueError("observed_at must have one timestamp per row")

    cols = table.columns
    stage = sql.Identifier(f"_scd2_stage_{table.name}")
    target = sql.Identifier(table.name)
    key_ids = [sql.Identifier(k) for k in table.key_columns]
    col_ids = [sql.Identifier(c) for c in cols]

    keys_in_batch = len({tuple(r.get(k) for k in table.key_columns) for r in rows})
    with conn.transaction(), conn.cursor() as cur:
        _ensure_stage(cur, table, stage, col_ids, target)
        # Inside a caller's transaction an earlier batch's rows/tables are still there until it commits.
        cur.execute(sql.SQL("DELETE FROM {stage}").format(stage=stage))
        copy_cols = sql.SQL(", ").join([*col_ids, sql.Identifier("created_at"), sql.Identifier("_seq")])
        now = datetime.now(UTC)
        json_idx = [i for i, c in enumerate(cols) if c in table.json_columns]
        with cur.copy(sql.SQL("COPY {stage} ({cols}) FROM STDIN").format(stage=stage, cols=copy_cols)) as copy:
            for seq, (row, ts) in enumerate(zip(rows, times, strict=True)):
                values = [row.get(c) for c in cols]
                for i in json_idx:  # JSONB travels as text; Decimals inside stay exact strings
                    if values[i] is not None and not isinstance(values[i], str):
                        values[i] = dumps(values[i])
                values.append(ts or now)
                values.append(seq)
                copy.write_row(values)

        key_list = sql.SQL(", ").join(key_ids)
        join_on = sql.SQL(" AND ").join(sql.SQL("c.{k} = s.{k}").format(k=k) for k in key_ids)
        # Only when a key repeats in the batch is the (sorting) latest-per-key step needed.
        source = (sql.SQL("{stage}").format(stage=stage) if keys_in_batch == len(rows) else
                  sql.SQL("(SELECT DISTINCT ON ({keys}) * FROM {stage} ORDER BY {keys}, _seq DESC)").format(
                      keys=key_list, stage=stage))
        # 1) close the current versions that the incoming rows materially change. A snapshot older than
        #    the stored version is stale information and is ignored.
        cur.execute(sql.SQL(
            "UPDATE {target} c SET row_current_ind = FALSE, row_end_ts = s.created_at "
            "FROM {source} s WHERE {join_on} AND c.row_current_ind AND s.created_at >= c.created_at AND ({pred})"
        ).format(target=target, source=source, join_on=join_on, pred=table.predicate()))
        # 2) every key that now has no current version (new, or just closed) gets the incoming row.
        cur.execute(sql.SQL(
            "INSERT INTO {target} ({cols}, created_at, row_current_ind) "
            "SELECT {s_cols}, s.created_at, TRUE FROM {source} s "
            "WHERE NOT EXISTS (SELECT 1 FROM {target} c WHERE {join_on} AND c.row_current_ind)"
        ).format(target=target, cols=sql.SQL(", ").join(col_ids),
                 s_cols=sql.SQL(", ").join(sql.SQL("s.{}").format(c) for c in col_ids), source=source,
                 join_on=join_on))
        written = cur.rowcount
    return WriteResult(len(rows), written, keys_in_batch)


def write_one(conn: psycopg.Connection[Any], table: SCD2Table, row: Mapping[str, Any],
              observed_at: datetime | None = None) -> bool:
    """Write one snapshot; True when it became a new version."""
    return write_batch(conn, table, [row], observed_at).versions_written == 1


def _key_filter(table: SCD2Table, key: Sequence[Any]) -> tuple[sql.Composable, list[Any]]:
    if len(key) != len(table.key_columns):
        raise ValueError(f"{table.name} key is ({', '.join(table.key_columns)})")
    cond = sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(k)) for k in table.key_columns)
    return cond, list(key)


def current(conn: psycopg.Connection[Any], table: SCD2Table, key: Sequence[Any]) -> dict[str, Any] | None:
    cond, params = _key_filter(table, key)
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(sql.SQL("SELECT * FROM {t} WHERE {cond} AND row_current_ind").format(
            t=sql.Identifier(table.name), cond=cond), params)
        return cur.fetchone()


def as_of(conn: psycopg.Connection[Any], table: SCD2Table, key: Sequence[Any], at: datetime) -> dict[str, Any] | None:
    """The version of `key` that was valid at time `at` (None if it did not exist yet)."""
    cond, params = _key_filter(table, key)
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(sql.SQL(
            "SELECT * FROM {t} WHERE {cond} AND created_at <= %s AND (row_end_ts > %s OR row_end_ts IS NULL) "
            "ORDER BY created_at DESC LIMIT 1"
        ).format(t=sql.Identifier(table.name), cond=cond), [*params, at, at])
        return cur.fetchone()


def history(conn: psycopg.Connection[Any], table: SCD2Table, key: Sequence[Any]) -> list[dict[str, Any]]:
    cond, params = _key_filter(table, key)
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(sql.SQL("SELECT * FROM {t} WHERE {cond} ORDER BY created_at, {id}").format(
            t=sql.Identifier(table.name), cond=cond, id=sql.Identifier(table.id_column)), params)
        return list(cur.fetchall())


def jsonb(value: Any) -> Jsonb:
    """Wrap a Python value for a JSONB parameter (Decimals stay exact strings)."""
    return Jsonb(value, dumps=dumps)


def rows_from(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return list(records)
