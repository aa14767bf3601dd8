"""`precog approvals list|approve|reject` through the real entry point, on an entry the engine held for approval."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from clikit import fails_with, json_ok
from engine.conftest import Rig, rig_config


async def _held_entry(make_rig: Any) -> Rig:
    rig: Rig = make_rig(rig_config(**{"trading.manual_approval.mode": "always"}))
    rig.quote("0.49", "0.50")
    rig.probs.p[rig.ticker] = Decimal("0.62")
    engine = rig.make_engine()
    await engine.start()
    for _ in range(4):
        await rig.step()
    return rig


async def test_list_approve_and_answer_only_once(make_rig: Any, precog_cli: Any) -> None:
    rig = await _held_entry(make_rig)
    listed = json_ok(precog_cli("approvals", "list", "--json"))
    assert len(listed) == 1
    row = listed[0]
    assert row["status"] == "pending" and row["market_id"] == rig.ticker and row["side"] == "yes"
    assert row["limit_price"] == "0.5000" and row["count"] > 0 and row["client_order_id"].startswith("pce-")
    table = precog_cli("approvals", "list")
    assert table.returncode == 0 and rig.ticker in table.stdout and "pending" in table.stdout

    fails_with(precog_cli("approvals", "approve", str(row["approval_id"]), "--by", "  "), "--by")
    approved = json_ok(precog_cli("approvals", "approve", str(row["approval_id"]), "--by", "alice", "--json"))
    assert approved["status"] == "approved" and approved["decided_by"] == "alice"
    # an answer is given once
    fails_with(precog_cli("approvals", "reject", str(row["approval_id"]), "--by", "bob"), "is approved by alice")
    fails_with(precog_cli("approvals", "approve", "999999", "--by", "alice"), "no entry approval 999999")

    await rig.run_until(lambda: rig.open_positions())
    assert json_ok(precog_cli("approvals", "list", "--json")) == []  # nothing outstanding once it was sent
    everything = json_ok(precog_cli("approvals", "list", "--all", "--json"))
    assert [(r["approval_id"], r["status"]) for r in everything] == [(row["approval_id"], "submitted")]
    sent = rig.rows("SELECT client_order_id FROM orders WHERE purpose = 'entry'")
    assert sent == [(row["client_order_id"],)]


async def test_reject_records_who_and_why(make_rig: Any, precog_cli: Any) -> None:
    rig = await _held_entry(make_rig)
    approval_id = json_ok(precog_cli("approvals", "list", "--json"))[0]["approval_id"]
    out = precog_cli("approvals", "reject", str(approval_id), "--by", "bob", "--reason", "injury news")
    assert out.returncode == 0 and "rejected by bob" in out.stdout, out.stderr
    for _ in range(6):
        await rig.step()
    rows = json_ok(precog_cli("approvals", "list", "--all", "--json"))
    assert [(r["status"], r["decided_by"], r["reason"]) for r in rows] == [("rejected", "bob", "injury news")]
    assert rig.rows("SELECT count(*) FROM orders WHERE purpose = 'entry'") == [(0,)]


async def test_approving_past_the_wall_clock_expiry_says_so_and_the_loop_decides(make_rig: Any,
                                                                                precog_cli: Any) -> None:
    """The rig's loop runs on a simulated clock in 2025, so its entries are past their expiry by this machine's
    clock: the command approves and says so (a loop on the real clock would expire it), and the loop, which judges
    expiry on its own clock, sends it."""
    rig = await _held_entry(make_rig)
    approval_id = json_ok(precog_cli("approvals", "list", "--json"))[0]["approval_id"]
    out = precog_cli("approvals", "approve", str(approval_id), "--by", "alice")
    assert out.returncode == 0 and "approved by alice" in out.stdout, out.stderr
    assert "has passed by this machine's clock" in out.stderr
    await rig.run_until(lambda: rig.open_positions())
    assert [r["status"] for r in json_ok(precog_cli("approvals", "list", "--all", "--json"))] == ["submitted"]
