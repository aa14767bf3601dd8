"""`precog edges ...`: one decision scan now (edges net of fees, signals, sizes, risk), and the stored edges."""

from __future__ import annotations

from contextlib import ExitStack
from decimal import Decimal
from typing import Any

import typer

from precog.cli.errors import UserError
from precog.cli.output import console, print_json, print_table
from precog.config.loader import load_config
from precog.db.connection import connect
from precog.db.migrate import ensure_migrated
from precog.domain.money import MoneyError, to_decimal

edges_app = typer.Typer(help="Edges net of fees: scan the open markets now, list the stored edges.",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(edges_app, name="edges")


def _alerts(url: str, stack: ExitStack) -> Any:
    from precog.alerts.manager import AlertManager

    return stack.enter_context(AlertManager(url))


@edges_app.command("scan")
def scan(
    as_json: bool = typer.Option(False, "--json", help="Print JSON (Decimals as strings)."),
    mode: str = typer.Option("paper", "--mode", help="paper (testing and active methods) or live (active only)."),
    store: bool = typer.Option(True, "--store/--no-store", help="Store the edges and rejections (default) or not."),
    top: int = typer.Option(20, "--top", min=1, help="How many edges/intents/rejections to show (table output)."),
) -> None:
    """Run one decision scan now over every open market in scope: P(YES) from the model(s), edges on both
    sides net of fees and slippage, strategy signals, Kelly sizes and every pre-trade risk check. Edges
    are stored (SCD2, one calculation run id); no order is placed.

    Example: precog edges scan --json
    """
    from precog.trading.scan import ScanError, run_scan
    from precog.trading.strategies import StrategyError

    if mode not in ("paper", "live"):
        raise UserError(f"--mode: {mode!r} is not paper or live")
    url = ensure_migrated()
    cfg = load_config(db_url=url)
    with ExitStack() as stack:
        alerts = _alerts(url, stack)
        conn = stack.enter_context(connect(url, autocommit=True))
        try:
            report = run_scan(conn, cfg, lambda: connect(url), mode=mode, store=store, alerts=alerts)
        except (ScanError, StrategyError) as exc:
            raise UserError(str(exc)) from exc
    r = report.result
    intents = [_intent_json(a.intent) for a in r.approved]
    rejections = [_rejection_json(x) for x in r.rejections]
    edges = sorted(r.edges, key=lambda e: e.edge, reverse=True)
    summary = {
        "calculation_run_id": r.run_id, "mode": mode, "trading_state": report.state.as_dict(),
        "units": list(r.units), "markets_in_scope": len(report.snapshot.markets),
        "markets_out_of_scope": report.snapshot.out_of_scope | r.skipped, "games": len(report.snapshot.games),
        "open_positions": len(report.snapshot.positions), "balance": report.snapshot.balance,
        "edges": len(edges), "signals": r.signals, "intents": intents, "rejections": rejections,
        "stored": None if report.stored is None else {
            "edges_received": report.stored.received, "versions_written": report.stored.versions_written,
            "edges_ended": report.stored.ended, "rejections": report.rejections_stored},
        "notes": report.notes,
    }
    if as_json:
        summary["edge_list"] = [_edge_json(e) for e in edges]
        print_json(summary)
        return
    state = report.state
    console.print(f"scan {r.run_id} ({mode}): {len(report.snapshot.markets)} markets in scope, "
                  f"{len(report.snapshot.games)} games, {len(edges)} edges, {r.signals} signals, "
                  f"{len(intents)} approved, {len(rejections)} rejected; trading {state.mode.value}",
                  highlight=False)
    for note in report.notes:
        console.print(f"note: {note}", highlight=False)
    if report.stored is not None:
        console.print(f"stored: {report.stored.versions_written} new edge versions, {report.stored.ended} ended, "
                      f"{report.rejections_stored} rejections", highlight=False)
    if edges:
        print_table(f"Best edges (top {min(top, len(edges))} of {len(edges)})",
                    ["market", "side", "p", "price", "fee", "edge", "ev %", "conf", "action", "signal"],
                    ([e.ticker, e.side, e.p_side, e.price, e.fee, e.edge, e.ev_pct, e.confidence_level, e.action,
                      "yes" if e.signal else e.reason] for e in edges[:top]))
    if intents:
        print_table("Approved order intents (not sent)", ["market", "side", "quantity", "price", "stake", "edge", "type",
                                                          "by", "size bound by", "size reduced by"],
                    ([i["market"], i["side"], i["quantity"], i["price"], i["stake"], i["edge"], i["order_type"],
                      i["method"] or i["strategy"], i["size_limit"], ", ".join(i["size_adjustments"]) or "-"]
                     for i in intents[:top]))
    if rejections:
        print_table("Rejected", ["market", "side", "check", "reason"],
                    ([x["market"], x["side"], x["check"], x["reason"]] for x in rejections[:top]))


def _edge_json(e: Any) -> dict[str, Any]:
    return {"market": e.ticker, "event": e.event_ticker, "side": e.side, "p": e.p_side, "price": e.price,
            "implied": e.implied, "fee_per_contract": e.fee, "slippage": e.slippage, "cost": e.cost, "edge": e.edge,
            "ev_pct": e.ev_pct, "confidence": e.confidence, "confidence_level": e.confidence_level,
            "recommended_action": e.action, "min_edge": e.min_edge, "signal": e.signal, "reason": e.reason,
            "strategy_id": e.strategy_id, "model_id": e.model_id, "method_id": e.method_id}


def _intent_json(i: Any) -> dict[str, Any]:
    return {"intent_id": i.intent_id, "market": i.ticker, "side": i.side, "quantity": i.quantity, "price": i.price,
            "stake": i.stake, "edge": i.edge, "ev_pct": i.ev_pct, "p": i.p_side, "order_type": i.order_type,
            "confidence_level": i.confidence_level, "strategy": i.strategy.ref.label, "model": i.model.label,
            "method": i.method.label if i.method else None, "size_limit": i.size_limit,
            "size_adjustments": list(i.size_adjustments), "volatility_ratio": i.market.volatility_ratio}


def _rejection_json(x: Any) -> dict[str, Any]:
    return {"market": x.market.ticker if x.market else None, "side": x.side, "check": x.check, "reason": x.reason,
            "edge": x.edge, "quantity": x.quantity, "stake": x.stake, "strategy_id": x.strategy_id, "model_id": x.model_id,
            "method_id": x.method_id}


@edges_app.command("list")
def list_cmd(
    min_edge: str | None = typer.Option(None, "--min-edge", help="Only edges >= this (dollars per contract)."),
    market: str | None = typer.Option(None, "--market", help="Only this market ticker."),
    action: str | None = typer.Option(None, "--action", help="Only this recommended action (ignore/alert/auto_execute)."),
    limit: int = typer.Option(100, "--limit", min=1, help="At most this many rows."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (Decimals as strings)."),
) -> None:
    """List the current stored edges, best first.

    Example: precog edges list --min-edge 0.05 --json
    """
    from precog.trading.edge_store import list_edges

    threshold: Decimal | None = None
    if min_edge is not None:
        try:
            threshold = to_decimal(min_edge, field="--min-edge")
        except MoneyError as exc:
            raise UserError(str(exc)) from exc
        if not Decimal("-1") <= threshold <= Decimal("1"):
            raise UserError(f"--min-edge: {threshold} must be within [-1, 1]")
    if action is not None and action not in ("ignore", "alert", "auto_execute"):
        raise UserError(f"--action: {action!r} is not ignore, alert or auto_execute")
    url = ensure_migrated()
    with connect(url) as conn:
        rows = list_edges(conn, min_edge=threshold, market=market, action=action, limit=limit)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("no current edges" + (f" >= {threshold}" if threshold is not None else "")
                   + " (run `precog edges scan`)")
        return
    print_table(f"Current edges ({len(rows)})",
                ["market", "side", "edge", "ev %", "p", "price", "fee", "conf", "action", "strategy", "model",
                 "method", "since"],
                ([r["market_id"], r["side"], r["expected_value"], r["ev_pct"], r["true_win_probability"],
                  r["market_price"], r["fee_per_contract"], r["confidence_level"], r["recommended_action"],
                  r["strategy"], r["model"], r["method"], r["created_at"].isoformat(timespec="seconds")] for r in rows))


@edges_app.command("rejections")
def rejections_cmd(
    limit: int = typer.Option(50, "--limit", min=1, help="At most this many rows."),
    run: str | None = typer.Option(None, "--run", help="Only this calculation run id."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (Decimals as strings)."),
) -> None:
    """List recorded pre-trade risk rejections (newest first), each with the check and reason.

    Example: precog edges rejections --limit 20
    """
    import uuid

    from precog.trading.edge_store import list_rejections

    if run is not None:
        try:
            uuid.UUID(run)
        except ValueError:
            raise UserError(f"--run: {run!r} is not a calculation run id (a UUID)") from None
    url = ensure_migrated()
    with connect(url) as conn:
        rows = list_rejections(conn, limit=limit, run_id=run)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("no recorded rejections")
        return
    print_table(f"Risk rejections ({len(rows)})", ["at", "market", "side", "check", "reason"],
                ([r["rejected_at"].isoformat(timespec="seconds"), r["market_id"], r["side"], r["check_name"],
                  r["reason"]] for r in rows))
