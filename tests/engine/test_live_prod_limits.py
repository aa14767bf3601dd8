"""Live trading on Kalshi production starts small (spec 4.2, env.template's production caps: position $100,
total exposure $1,000, daily loss $50): `precog run --live` toward production caps the regular limits by
trading.yaml `live_prod_limits` and says so; demo and paper runs keep the regular limits."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from precog.config.loader import load_config
from precog.domain.fees import FeeSchedule
from precog.trading.live_limits import capped_for_live_prod

D = Decimal


def test_each_regular_limit_is_capped_and_a_tighter_one_stays(tmp_path: Path) -> None:
    capped, in_force = capped_for_live_prod(load_config(None, use_env=False, use_overrides=False))
    assert in_force == {"max_position_dollars": D("100"), "max_total_exposure_dollars": D("1000"),
                        "daily_loss_limit_dollars": D("50")}
    assert capped.get("trading.position_sizing.kelly.max_position_dollars") == D("100")
    assert capped.get("trading.account.max_total_exposure_dollars") == D("1000")
    assert capped.get("trading.account.daily_loss_limit_dollars") == D("50")
    assert capped.get("system.circuit_breakers.loss_limit.daily_loss_usd") == D("50")
    (tmp_path / "trading.yaml").write_text("position_sizing:\n  kelly:\n    max_position_dollars: 60.00\n"
                                           "live_prod_limits:\n  daily_loss_limit_dollars: 400.00\n")
    cfg = load_config(tmp_path, use_env=False, use_overrides=False)
    capped, in_force = capped_for_live_prod(cfg)
    assert in_force["max_position_dollars"] == D("60")  # the operator's own tighter limit
    assert in_force["daily_loss_limit_dollars"] == D("400")  # raised deliberately, under the regular $500
    assert cfg.get("trading.position_sizing.kelly.max_position_dollars") == D("60")  # the input is not changed
    assert cfg.get("trading.account.daily_loss_limit_dollars") == D("500")


@pytest.mark.timeout(200)
def test_a_live_run_toward_production_sizes_under_the_caps(db_url: str, precog_cli: Any, tmp_path: Any) -> None:
    from trading.trading_dbkit import prod_stand_in

    stand_in = prod_stand_in(db_url, tmp_path / "keys")
    world, ex, server = stand_in.world, stand_in.exchange, stand_in.server
    # entries go straight out (manual approval of production entries is test_entry_approvals_live_prod's; of
    # entries decided before the stream subscribed their markets, test_entry_approval_stream_down's)
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "trading.yaml").write_text("manual_approval:\n  mode: \"off\"\n  when_realtime_down: false\n",
                                                   encoding="utf-8")
    server.start()
    try:  # --env prod with the local exchange standing in for production's host
        r = precog_cli("run", "--venue", "kalshi", "--env", "prod", "--live", "--confirm-live", "--no-ingest",
                       "--no-notify", "--quiet", "--interval", "0.2", "--duration", "4",
                       env={**stand_in.env, "PRECOG_CONFIG_DIR": str(tmp_path / "cfg")},
                       timeout=150)
    finally:
        server.stop()
    assert r.returncode == 0, r.stderr
    assert ("live on Kalshi production: position at most $100.00, total exposure $1,000.00, daily loss $50.00 "
            "(trading.live_prod_limits caps the regular limits)") in r.stdout
    assert re.search(r"run \d+: \d+ cycles, (\d+) fills", r.stdout)
    orders = list(ex.account("us").orders.values())
    assert orders, r.stdout  # the caps were exercised: real orders went out
    fees = FeeSchedule()
    for o in orders:  # each entry commits at most the $100 position cap (contracts x limit + the order's fee)
        price = D(o.tick) / 100  # the limit on the side it buys
        assert o.action == "buy" and o.initial_count * price + fees.fee(o.initial_count, price) <= D("100"), \
            (o.initial_count, price)
    with psycopg.connect(db_url) as conn:
        cost = conn.execute("SELECT coalesce(sum(entry_price * quantity), 0) FROM positions WHERE row_current_ind "
                            "AND status = 'open'").fetchone()[0]
    assert D("0") < cost <= D("100") * 2  # two markets at most, each under its cap
    world.conn.close()


def test_the_cap_binds_a_strategy_with_its_own_larger_position_cap() -> None:
    # settlement arbitrage sizes up to its own $1,000 (spec 5.11), which replaces the global cap: in a live
    # production run the $100 binds it too (kelly.absolute_max_position_dollars)
    from precog.trading.risk import RiskManager
    from precog.trading.settings import TradingSettings
    from precog.trading.strategies import StrategyRef, build_strategy

    cfg = load_config(None, use_env=False, use_overrides=False)
    block = {k: v for k, v in cfg.get("trade_strategies.strategies.settlement_arbitrage").items()
             if k not in ("version", "enabled")}
    arb = build_strategy(StrategyRef(1, "settlement_arbitrage", "v1.0", "active"), block)
    assert arb.max_position_dollars == D("1000")
    regular = RiskManager(TradingSettings.from_config(cfg))
    regular.sync((), D("100000"))
    assert regular.caps(arb, None, "nfl")[0] == D("1000")  # 5% of $100,000 is more: its own cap binds
    capped, _ = capped_for_live_prod(cfg)
    live = RiskManager(TradingSettings.from_config(capped))
    live.sync((), D("100000"))
    assert live.caps(arb, None, "nfl")[0] == D("100")
