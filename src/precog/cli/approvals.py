"""`precog approvals ...`: entries waiting for a person's approval before they are sent (ADR-009)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import typer

from precog.cli.errors import UserError
from precog.cli.output import console, err_console, print_json, print_table
from precog.db.connection import connect
from precog.db.migrate import ensure_migrated

approvals_app = typer.Typer(
    help="Entries waiting for manual approval (trading.manual_approval): list, approve, reject. Exits never wait.",
    no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(approvals_app, name="approvals")


def _by(value: str) -> str:
    value = value.strip()
    if not value:
        raise UserError("--by: say who you are (a name)")
    return value[:100]


def _when(value: Any) -> str:
    return value.isoformat(timespec="seconds") if value is not None else ""


@approvals_app.command("list")
def list_cmd(
    everything: bool = typer.Option(False, "--all", help="Every recent entry approval, answered ones included."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Entries waiting for an answer (pending) or approved and not sent yet; --all: the latest 200 of any status.

    Example: precog approvals list
    """
    from precog.trading.approvals import list_approvals

    url = ensure_migrated()
    with connect(url) as conn:
        rows = list_approvals(conn, everything=everything)
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no entry waits for approval" if not everything else "no entry approvals yet",
                      highlight=False)
        return
    print_table("entry approvals", ["id", "status", "market", "side", "count", "limit", "edge", "method", "expires",
                                    "decided by", "note"],
                [(r["approval_id"], r["status"], r["market_id"], r["side"], r["count"], r["limit_price"], r["edge"],
                  r["method_id"], _when(r["expires_at"]), r["decided_by"],
                  r["not_sent_reason"] or r["reason"] or r.get("why") or "") for r in rows])


def _answer(approval_id: int, *, approve: bool, by: str, reason: str | None, as_json: bool) -> None:
    from precog.trading.approvals import ApprovalDecisionError, decide

    who = _by(by)
    url = ensure_migrated()
    with connect(url, autocommit=True) as conn:
        try:
            row = decide(conn, approval_id, approve=approve, by=who, reason=reason)
        except ApprovalDecisionError as exc:
            raise UserError(str(exc)) from exc
    if as_json:
        print_json(row)
        return
    if approve:
        console.print(f"entry approval {row['approval_id']} approved by {who}: the trading loop sends buy "
                      f"{row['count']} {row['side']} on {row['market_id']} at <= {row['limit_price']} once the market "
                      f"and every risk check still allow it, before {_when(row['expires_at'])}", highlight=False)
        if row["expires_at"] is not None and row["expires_at"] <= datetime.now(UTC):
            # only a note: the loop judges expiry on its own clock (a simulated loop's may be anywhere)
            err_console.print(f"note: {_when(row['expires_at'])} has passed by this machine's clock: a loop on the "
                              "real clock (Kalshi) expires this entry instead of sending it", highlight=False)
    else:
        console.print(f"entry approval {row['approval_id']} rejected by {who}: nothing is sent, and the loop does "
                      "not ask again for this method, market and side", highlight=False)


@approvals_app.command("approve")
def approve(
    approval_id: int = typer.Argument(..., help="The approval's id (precog approvals list)."),
    by: str = typer.Option(..., "--by", help="Who approves it (recorded)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Approve a pending entry: the trading loop sends it (at most the approved contracts, at a price within the
    approved limit) after checking the market and every risk limit again, unless it expires first.

    Example: precog approvals approve 12 --by alice
    """
    _answer(approval_id, approve=True, by=by, reason=None, as_json=as_json)


@approvals_app.command("reject")
def reject(
    approval_id: int = typer.Argument(..., help="The approval's id (precog approvals list)."),
    by: str = typer.Option(..., "--by", help="Who rejects it (recorded)."),
    reason: str = typer.Option(None, "--reason", help="Why (recorded)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Reject a pending entry: nothing is sent, its reserved exposure is freed, and the loop does not propose the
    same method, market and side again.

    Example: precog approvals reject 12 --by alice --reason "injury news"
    """
    _answer(approval_id, approve=False, by=by, reason=reason, as_json=as_json)
