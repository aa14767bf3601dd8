"""The exchange survives a restart through its JSON snapshot (`precog exchange serve --state FILE`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import httpx
import pytest

from precog.venues.exchange.auth import KeyRegistry, generate_key_pair
from precog.venues.exchange.clock import SimClock
from precog.venues.exchange.engine import Exchange
from precog.venues.exchange.snapshot import SnapshotError, dump, restore, save

T = "KXSNAP-25JAN01-A"


def busy_exchange() -> Exchange:
    ex = Exchange(SimClock(1_700_000_000_000), seed=4)
    ex.create_series("KXSNAP", "snap", maker_fee_rate=D("0.0175"))
    ex.create_event("KXSNAP-25JAN01", "KXSNAP", "snap")
    ex.create_market(T, "KXSNAP-25JAN01", title="A?")
    ex.create_market("KXSNAP-25JAN01-B", "KXSNAP-25JAN01", title="B?")
    for name in ("a", "b", "c"):
        ex.create_account(name, D("500"))
    ex.place_order("a", T, "no", "buy", 10, D("0.60"), client_order_id="a-1")
    ex.place_order("c", T, "no", "buy", 10, D("0.60"))  # behind a-1 in the queue
    ex.place_order("b", T, "yes", "buy", 4, D("0.40"))
    ex.place_order("b", T, "yes", "sell", 2, D("0.45"), expiration_ms=1_700_000_100_000)  # closing, resting
    ex.place_order("a", "KXSNAP-25JAN01-B", "yes", "buy", 3, D("0.5"))
    ex.place_order("b", "KXSNAP-25JAN01-B", "no", "buy", 3, D("0.5"))
    ex.settle_market("KXSNAP-25JAN01-B", D("0.25"))
    return ex


def test_round_trip_keeps_everything(tmp_path: Path) -> None:
    ex = busy_exchange()
    key_id, _, public_pem = generate_key_pair(tmp_path)
    keys = KeyRegistry()
    keys.register("a", public_pem, key_id)
    save(ex, tmp_path / "state.json", keys)
    restored_keys = KeyRegistry()
    back = restore(tmp_path / "state.json", SimClock(1_700_000_000_000), restored_keys)
    assert dump(back, restored_keys) == dump(ex, keys)
    assert restored_keys.get(key_id) is not None and restored_keys.get(key_id).user_id == "a"  # type: ignore[union-attr]
    assert back.audit() == ex.audit()
    # the restored book still trades in the saved queue order, with the saved holds and reservations
    back.place_order("b", T, "yes", "buy", 12, D("0.40"))
    a1 = back.accounts["a"].by_client_id["a-1"]
    assert a1.fill_count == 10 and a1.status == "executed"
    assert back.audit()["imbalance"] == 0
    # the expiry schedule came back too
    back.clock.advance(101)
    back.tick()
    assert not [o for o in back.accounts["b"].orders.values() if o.status == "resting" and o.action == "sell"]
    # ids keep counting from where they were
    assert back.place_order("c", T, "yes", "buy", 1, D("0.01")).order_id not in ex.orders


def test_a_state_saved_before_fee_accumulation_restores_and_never_charges_a_negative_fee(tmp_path: Path) -> None:
    ex = busy_exchange()
    state = dump(ex)
    for order in state["orders"]:
        del order["fee_basis"]  # written by a version without the per-order fee accumulator
    (tmp_path / "old.json").write_text(json.dumps(state))
    back = restore(tmp_path / "old.json", SimClock(1_700_000_000_000))
    a1 = back.accounts["a"].by_client_id["a-1"]
    paid = a1.taker_fees + a1.maker_fees
    assert a1.fee_basis == paid  # its next fills pay their own rounded fee, as before
    back.place_order("b", T, "yes", "buy", 12, D("0.40"))
    fees = [rec[19] for rec in back.accounts["a"].fills[-1:]]  # the maker fee of a-1's new fill
    assert all(f >= 0 for f in fees) and a1.maker_fees + a1.taker_fees >= paid
    assert back.audit()["imbalance"] == 0


def test_damaged_state_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "state.json"
    bad.write_text("{not json")
    with pytest.raises(SnapshotError, match="not valid JSON"):
        restore(bad)
    bad.write_text(json.dumps({"version": 99}))
    with pytest.raises(SnapshotError, match="version 99"):
        restore(bad)
    data = dump(busy_exchange())
    del data["accounts"][0]["balance"]
    bad.write_text(json.dumps(data))
    with pytest.raises(SnapshotError, match="damaged or incomplete"):
        restore(bad)


def _serve(home: Path, state: Path) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen([sys.executable, "-m", "precog", "exchange", "serve", "--port", "0", "--json",
                             "--state", str(state)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PRECOG_HOME": str(home)})
    assert proc.stdout is not None
    lines = []
    while True:
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else "server exited"
        lines.append(line)
        if line.rstrip() == "}":
            return proc, json.loads("".join(lines))


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 0


def test_serve_with_state_survives_a_restart(tmp_path: Path, kalshi_auth: Any) -> None:
    state = tmp_path / "exchange.json"
    proc, info = _serve(tmp_path, state)
    try:
        account = info["accounts"][0]
        auth = kalshi_auth(account["key_id"], Path(account["private_key_path"]))
        root = info["base_url"].rsplit("/trade-api", 1)[0]
        httpx.post(f"{root}/sim/markets", json={"ticker": "KXKEEP-25JAN01-A"}).raise_for_status()
        with httpx.Client(base_url=info["base_url"], auth=auth) as c:
            r = c.post("/portfolio/orders", json={"ticker": "KXKEEP-25JAN01-A", "side": "yes", "action": "buy",
                                                  "count": 5, "yes_price": 20, "client_order_id": "keep-1"})
            assert r.status_code == 201
            balance = c.get("/portfolio/balance").json()["balance"]
    finally:
        _stop(proc)
    proc, info2 = _serve(tmp_path, state)
    try:
        assert info2["accounts"][0]["key_id"] == account["key_id"] and info2["accounts"][0]["restored"] is True
        with httpx.Client(base_url=info2["base_url"], auth=auth) as c:
            assert c.get("/portfolio/balance").json()["balance"] == balance
            orders = c.get("/portfolio/orders", params={"status": "resting"}).json()["orders"]
            assert [o["client_order_id"] for o in orders] == ["keep-1"]
    finally:
        _stop(proc)
