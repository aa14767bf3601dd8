"""Value at risk of the open positions to settlement (spec 8.2: VaR > 0.10 alerts), `precog.trading.var`.

Marks are the win probabilities; one game's markets are mutually exclusive (one team wins), games independent.
The figures below are worked by hand.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg
import pytest

from precog.alerts.manager import AlertManager
from precog.config.errors import ConfigError
from precog.config.loader import load_config
from precog.trading.var import Holding, VarRule, VarWatch, pnl_distribution, value_at_risk

D = Decimal


def h(event: str, market: str, side: str, contracts: int, mark: str) -> Holding:
    return Holding(event, market, side, contracts, D(mark))


def test_one_even_money_position_risks_its_whole_mark_value() -> None:
    assert pnl_distribution([h("G1", "G1-BUF", "yes", 100, "0.50")]) == {-50: 0.5, 50: 0.5}
    assert value_at_risk([h("G1", "G1-BUF", "yes", 100, "0.50")], D("0.95")) == D("50")


def test_a_loss_rarer_than_the_tail_is_not_value_at_risk() -> None:
    likely = [h("G1", "G1-BUF", "no", 100, "0.96")]  # loses $96 with probability 0.04
    assert value_at_risk(likely, D("0.95")) == D("0")
    assert value_at_risk(likely, D("0.97")) == D("96")


def test_independent_games_combine() -> None:
    two = [h("G1", "G1-BUF", "yes", 100, "0.50"), h("G2", "G2-KC", "yes", 100, "0.50")]
    assert pnl_distribution(two) == {-100: 0.25, 0: 0.5, 100: 0.25}
    assert value_at_risk(two, D("0.95")) == D("100")
    assert value_at_risk(two, D("0.70")) == D("0")  # P(loss of $100) = 0.25 < 0.30


def test_one_games_markets_share_its_outcome() -> None:
    # YES on Buffalo and NO on New England are the same bet: both lose when New England wins (0.4)
    same_bet = [h("G1", "G1-BUF", "yes", 100, "0.60"), h("G1", "G1-NE", "no", 100, "0.60")]
    assert pnl_distribution(same_bet) == {80: 0.6, -120: 0.4}
    assert value_at_risk(same_bet, D("0.95")) == D("120")
    # YES on both teams is a hedge: whoever wins, one pays what the other loses
    hedge = [h("G1", "G1-BUF", "yes", 100, "0.60"), h("G1", "G1-NE", "yes", 100, "0.40")]
    assert pnl_distribution(hedge) == {0: pytest.approx(1.0)}
    assert value_at_risk(hedge, D("0.95")) == D("0")


def test_cents_round_towards_the_loss() -> None:
    # 3 contracts at 0.335: lose $1.005 (p 0.665) -> the $-2 bucket, win $1.995 (p 0.335) -> the $1 bucket
    assert pnl_distribution([h("G1", "G1-BUF", "yes", 3, "0.335")]) == {-2: 0.665, 1: 0.335}


def test_the_watch_alerts_once_per_episode(db_url: str) -> None:
    manager = AlertManager(db_url)
    watch = VarWatch(VarRule(D("0.10"), D("0.95")), manager, "kalshi", "paper")
    big = [h("G1", "G1-BUF", "yes", 1000, "0.50")]  # $500 at risk
    try:
        assert watch.observe(big, D("5001")) is False  # 9.998% of equity
        assert watch.observe(big, D("5000")) is True  # 10%: the limit alerts
        assert watch.observe(big, D("4000")) is False  # still over: same episode
        assert watch.observe([h("G1", "G1-BUF", "yes", 100, "0.50")], D("5000")) is False  # 1%: episode over
        assert watch.observe(big, D("5000")) is True
        manager.flush()
    finally:
        manager.close()
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT severity, category, message, details, suppressed FROM alerts WHERE "
                            "alert_type = 'value_at_risk' ORDER BY alert_id").fetchall()
    assert [r[:2] for r in rows] == [("high", "risk")] * 2
    message, details = rows[0][2], rows[0][3]
    assert "95% value at risk of the 1 open position(s) to settlement is $500.00, 10.00% of equity $5,000.00" in message
    assert "trading.alerts.max_var_pct" in message
    assert details["value_at_risk"] == "500" and details["share"] == "0.1000" and details["events"] == 1
    assert rows[1][4] is True  # the repeat within the dedup window is stored, not re-sent


def test_the_var_keys_are_range_checked_naming_file_and_key(tmp_path: Any) -> None:
    (tmp_path / "trading.yaml").write_text("alerts:\n  var_confidence: 0.3\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, use_env=False, use_overrides=False)
    assert "trading.yaml" in str(err.value) and "var_confidence" in str(err.value)
    cfg = load_config(None, use_env=False, use_overrides=False)
    assert VarRule.from_config(cfg.get("trading")) == VarRule(D("0.10"), D("0.95"))
