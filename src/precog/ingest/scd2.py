"""The one SCD2 writer used by every versioned table (markets, game_states, edges, positions, account_balance).

A batch is written set-based in one transaction: COPY (key + compared columns) into a temporary staging
table, then ONE statement closes the current versions that the incoming rows change (the table's change
rule) and names every key left without a current one, whose full rows are then COPied in as new versions. Within one batch only the latest state of a key is
kept (batches are a flush interval apart); between batches every material change is a new version. A
snapshot older than the stored version of its key is stale and ignored.

Point-in-time reads return the version valid at T: created_at <= T < row_end_ts (or still current).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from precog.domain.jsonutil import dumps


@dataclass(frozen=True)
class SCD2Table:
    """How one versioned table is written.

    `change_predicate` is SQL over aliases `s` (incoming) and `c` (current) that is true when the incoming
    row is a new version; by default any difference in `compare_columns` (all value columns if empty).
    With a `change_predicate`, `compare_columns` must list every column it reads (they are what is staged)."""

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

    @property
    def stage_columns(self) -> tuple[str, ...]:
        """What the writer stages to decide what changed: the key and the columns the change rule reads."""
        return self.key_columns + (self.compare_columns or self.value_columns)

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
    compare_columns=(*MARKET_PRICE_COLUMNS, "volume", "status", "result", "settlement_value", "close_time", "title"),
    change_predicate=MARKET_MATERIAL_CHANGE,
    json_columns=frozenset({"metadata"}),
)

GAME_STATES = SCD2Table(
    name="game_states",
    key_columns=("sport", "external_game_id"),
    value_columns=(
        "event_id", "home_team", "away_team", "home_score", "away_score", "period", "period_label",
        "clock_seconds", "time_remaining", "possession", "status", "start_time", "neutral_site", "sport_metadata",
        "source_updated_at",
    ),
    # a change of site (neutral_site, migration 0012) changes every forecast of the game: a new version
    compare_columns=(
        "event_id", "home_team", "away_team", "home_score", "away_score", "period", "period_label",
        "clock_seconds", "possession", "status", "start_time", "neutral_site", "sport_metadata",
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


def _json_text(value: Any) -> Any:
    """JSONB travels as text; Decimals inside stay exact strings."""
    return dumps(value) if value is not None and not isinstance(value, str) else value


def _prepare_stage(cur: psycopg.Cursor[Any], table: SCD2Table, stage: sql.Identifier,
                   target: sql.Identifier) -> None:
    """The session's empty staging table, and index look-ups for this transaction, in one round trip.

    The table is created IF NOT EXISTS (a rolled-back batch may have taken it with it; every commit or
    rollback empties it) and emptied (inside a caller's transaction an earlier batch's rows are still
    there). It holds only what the change rule reads, not whole rows. The current versions are looked up
    through the current-row index, never by scanning the table: the planner knows nothing about the
    fresh staging table, and a hash join would read all of the versioned table (every version ever
    written) on every batch."""
    cur.execute(sql.SQL(
        "CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS "
        "SELECT {cols}, created_at, 0::bigint AS _seq FROM {target} WITH NO DATA; "
        "DELETE FROM {stage}; SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off"
    ).format(stage=stage, cols=sql.SQL(", ").join(sql.Identifier(c) for c in table.stage_columns),
             target=target))


def _values_of(columns: Sequence[str]) -> Callable[[Mapping[str, Any]], list[Any]]:
    """A row's values in column order, None for a missing column. The usual row has every column: one C-level
    itemgetter call instead of a Python loop of dict look-ups (2,000 rows x 34 columns a batch)."""
    if len(columns) < 2:
        return lambda row: [row.get(c) for c in columns]
    get = itemgetter(*columns)

    def values(row: Mapping[str, Any]) -> list[Any]:
        try:
            return list(get(row))
        except KeyError:
            return [row.get(c) for c in columns]

    return values


def _iso(memo: dict[datetime, str], value: datetime) -> str:
    """ISO text of a time, formatted once per distinct value (psycopg's datetime dumper costs ~1 us each)."""
    text = memo.get(value)
    if text is None:
        text = memo[value] = value.isoformat()
    return text


def write_batch(conn: psycopg.Connection[Any], table: SCD2Table, rows: Sequence[Mapping[str, Any]],
                observed_at: datetime | Sequence[datetime] | None = None) -> WriteResult:
    """Write a batch of snapshots (dicts keyed by column name) as new versions where they changed.

    `observed_at` is the validity start of each row (one time for all, or one per row); default now().
    Runs inside a transaction (the caller's, or its own).

    How: the latest snapshot per key (its key, the columns the change rule reads, its time) is COPied into
    a temporary staging table; ONE statement closes the current versions that those snapshots materially
    change and returns which snapshots become new versions (the changed ones and the keys without a
    current version); only those whole rows are then COPied into the table. Most snapshots of a busy feed
    change nothing material, so most rows never travel in full."""
    if not rows:
        return WriteResult(0, 0, 0)
    times: Sequence[datetime | None]
    if observed_at is None or isinstance(observed_at, datetime):
        times = [observed_at] * len(rows)
    else:
        times = observed_at
        if len(times) != len(rows):
            raise ValueError("observed_at must have one timestamp per row")

    keys = table.key_columns
    # Within one batch only the latest snapshot of a key counts (dict order keeps the batch's order).
    latest: dict[Any, int] = {}
    if len(keys) == 1:
        k0 = keys[0]
        for i, row in enumerate(rows):
            latest[row.get(k0)] = i
    else:
        for i, row in enumerate(rows):
            latest[tuple(row.get(k) for k in keys)] = i
    if len(latest) < len(rows):
        latest = dict(sorted(latest.items(), key=lambda item: item[1]))

    cols = table.columns
    stage_cols = table.stage_columns
    stage = sql.Identifier(f"_scd2_cmp_{table.name}")
    target = sql.Identifier(table.name)
    key_ids = [sql.Identifier(k) for k in keys]
    now = datetime.now(UTC)
    # SET LOCAL lasts until the end of the transaction: inside a caller's one, the planner settings are
    # put back afterwards.
    nested = conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
    planner: tuple[Any, ...] | None = None
    with conn.transaction(), conn.cursor() as cur:
        if nested:
            planner = cur.execute("SELECT current_setting('enable_hashjoin'),"
                                  " current_setting('enable_mergejoin')").fetchone()
        _prepare_stage(cur, table, stage, target)
        # One time for the whole batch (the usual case) is written into the statement, not staged per row.
        single = observed_at is None or isinstance(observed_at, datetime)
        staged_time = [] if single else [sql.Identifier("created_at")]
        copy_cols = sql.SQL(", ").join(
            [*(sql.Identifier(c) for c in stage_cols), *staged_time, sql.Identifier("_seq")])
        with cur.copy(sql.SQL("COPY {stage} ({cols}) FROM STDIN").format(stage=stage, cols=copy_cols)) as copy:
            write = copy.write_row
            stage_values = _values_of(stage_cols)
            stage_json = [j for j, c in enumerate(stage_cols) if c in table.json_columns]
            # Times travel as ISO text, each distinct value formatted once (the same value; psycopg's datetime
            # dumper costs ~1 us a value). Which columns hold times is seen in the first row; a time in
            # another column still goes through psycopg's own dumper, only more slowly.
            stamps: dict[datetime, str] = {}
            first = rows[next(iter(latest.values()))]
            stage_time = [j for j, c in enumerate(stage_cols) if isinstance(first.get(c), datetime)]
            for i in latest.values():
                row = rows[i]
                values = stage_values(row)
                for j in stage_json:
                    values[j] = _json_text(values[j])
                for j in stage_time:
                    if isinstance(values[j], datetime):
                        values[j] = _iso(stamps, values[j])
                if not single:
                    values.append(_iso(stamps, times[i] or now))
                values.append(i)
                write(values)

        join_on = sql.SQL(" AND ").join(sql.SQL("c.{k} = s.{k}").format(k=k) for k in key_ids)
        # One look-up of the current versions decides everything: a snapshot becomes a new version when its
        # key has no current version, or when it materially changes the current one (the table's change
        # rule); a snapshot older than the stored version is stale information and is ignored. The changed
        # current versions are closed (by id; `row_current_ind` is re-checked there so a version closed
        # meanwhile by another writer is not closed twice).
        cur.execute(sql.SQL(
            "WITH found AS MATERIALIZED (SELECT s._seq, {at} AS created_at, c.{id} AS cid FROM {stage} s "
            "LEFT JOIN {target} c ON {join_on} AND c.row_current_ind "
            "WHERE c.{id} IS NULL OR ({at} >= c.created_at AND ({pred}))), "
            "closed AS (UPDATE {target} m SET row_current_ind = FALSE, row_end_ts = f.created_at FROM found f "
            "WHERE m.{id} = f.cid AND m.row_current_ind RETURNING f._seq) "
            "SELECT _seq FROM closed UNION ALL SELECT _seq FROM found WHERE cid IS NULL"
        ).format(target=target, stage=stage, join_on=join_on, pred=table.predicate(),
                 id=sql.Identifier(table.id_column),
                 at=sql.SQL("{}::timestamptz").format(sql.Literal(observed_at or now)) if single
                 else sql.SQL("s.created_at")))
        chosen = sorted(seq for (seq,) in cur.fetchall())
        if planner is not None:
            cur.execute("SELECT set_config('enable_hashjoin', %s, true), set_config('enable_mergejoin', %s, true)",
                        (planner[0], planner[1]))
        if chosen:
            json_idx = [j for j, c in enumerate(cols) if c in table.json_columns]
            all_cols = sql.SQL(", ").join([*(sql.Identifier(c) for c in cols), sql.Identifier("created_at")])
            # venue times (open/close/expiration) mostly repeat from row to row: same ISO-text memo as above
            first = rows[chosen[0]]
            time_idx = [j for j, c in enumerate(cols) if isinstance(first.get(c), datetime)]
            with cur.copy(sql.SQL("COPY {target} ({cols}) FROM STDIN").format(target=target, cols=all_cols)) as copy:
                write = copy.write_row
                row_values = _values_of(cols)
                for i in chosen:
                    row = rows[i]
                    values = row_values(row)
                    for j in json_idx:
                        values[j] = _json_text(values[j])
                    for j in time_idx:
                        if isinstance(values[j], datetime):
                            values[j] = _iso(stamps, values[j])
                    values.append(_iso(stamps, times[i] or now))
                    write(values)
    return WriteResult(len(rows), len(chosen), len(latest))


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
