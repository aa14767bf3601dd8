"""Pre-trade risk checks: the approval gate, each check, and exposure across both sides of one game."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from trading_testkit import NOW, game, intent, market, method, settings, strategy

from precog.trading.breakers import BreakerBoard
from precog.trading.risk import (
    Approval,
    ApprovalError,
    Rejection,
    RejectionLog,
    RiskManager,
    require_approval,
)
from precog.trading.views import PositionView

D = Decimal


def _risk(cfg=None, **kw):  # type: ignore[no-untyped-def]
    log = RejectionLog()
    return RiskManager(cfg or settings(), recorder=log, clock=lambda: NOW, **kw), log


def test_an_approval_is_issued_only_by_the_risk_manager_and_used_once() -> None:
    risk, _ = _risk()
    it = intent(count=10)
    approval = risk.approve(it)
    assert isinstance(approval, Approval)
    with pytest.raises(ApprovalError):
        Approval(object(), 1, it, NOW, NOW + 10, D("1"))
    with pytest.raises(ApprovalError, match="needs an Approval"):
        require_approval(it)  # an intent alone does not pass the order path
    with pytest.raises(ApprovalError, match="another intent"):
        require_approval(approval, intent(count=10), now=NOW)
    assert require_approval(approval, it, now=NOW) is it
    with pytest.raises(ApprovalError, match="already used"):
        approval.consume(NOW)


def test_an_unused_approval_expires_and_frees_its_reservation() -> None:
    risk, _ = _risk()
    approval = risk.approve(intent(count=10))
    assert isinstance(approval, Approval)
    assert risk.book.total == approval.cost > 0
    with pytest.raises(ApprovalError, match="expired"):
        approval.consume(NOW + 11)
    risk.approve(intent(market(ticker="OTHER", event="EV2")), now=NOW + 11)  # any later check expires it
    assert risk.book.by_market.get("KXNFLGAME-25DEC28KCBUF-KC", D(0)) == 0


def test_a_rejection_names_the_check_and_is_recorded() -> None:
    risk, log = _risk()
    out = risk.approve(intent(p="0.55"))  # edge 0.55 - 0.5430 < min 0.08 (pre-game strategy)
    assert isinstance(out, Rejection) and out.check == "edge"
    assert "below minimum 0.08" in out.reason
    assert log.items == [out]


@pytest.mark.parametrize(("check", "make"), [
    ("status", lambda: intent(strat=strategy("pre_game_entry", status="draft"))),
    ("status", lambda: intent(meth=method(status="draft"))),
    ("status", lambda: intent(meth=method(sports=("nba",)))),
    ("size", lambda: intent(count=0)),
    ("price_sanity", lambda: intent(market(bid="0.00", ask="0.005"))),
    ("market_open", lambda: intent(market(status="halted"))),
    ("time_to_close", lambda: intent(market(close_in=30))),
    ("data_freshness", lambda: intent(replace(market(), quote_ts=NOW - 121))),
    ("data_freshness", lambda: intent(game_view=game("live", observed_ago=61))),
    ("edge", lambda: intent(p="0.60")),
    ("confidence", lambda: intent(confidence="0.69")),
    ("volume", lambda: intent(market(volume=99))),
    ("spread", lambda: intent(market(bid="0.40", ask="0.44"))),  # 0.04 > 5% of 0.44
    ("balance", lambda: intent(count=20000)),
])
def test_each_check_blocks_what_it_should(check: str, make) -> None:  # type: ignore[no-untyped-def]
    risk, log = _risk()
    out = risk.approve(make())
    assert isinstance(out, Rejection), out
    assert out.check == check, out.reason
    assert log.items[-1].check == check


def test_checks_pass_exactly_at_their_limits() -> None:
    risk, _ = _risk()
    ok = intent(replace(market(volume=100, close_in=3600, volume_24h=50, open_interest=100), quote_ts=NOW - 120),
                p="0.6226", confidence="0.70", game_view=game("live", observed_ago=60))
    assert ok.edge == D("0.08")  # 0.6226 - (0.52 + 0.02 fee + 0.0026 slippage)
    # edge exactly 0.08, volume 100, 24 h volume 50, open interest 100, price age 120 s, state age 60 s, and
    # 3600 s to close (markets.yaml global_filters.min_hours_to_close 1, stricter than the 60 s market filter)
    out = risk.approve(ok)
    assert isinstance(out, Approval), getattr(out, "reason", "")
    below = intent(p="0.6225")
    out = risk.approve(below)
    assert isinstance(out, Rejection) and out.check == "edge"


def test_trading_state_blocks_entries() -> None:
    board = BreakerBoard(settings().breakers, clock=lambda: NOW)
    risk, _ = _risk(gate=board)
    board.trip("edge_anomaly", "test")
    out = risk.approve(intent())
    assert isinstance(out, Rejection) and out.check == "trading_state" and "REDUCING" in out.reason
    board.reset("edge_anomaly", by="test")
    assert isinstance(risk.approve(intent()), Approval)


def test_never_both_sides_of_one_market() -> None:
    risk, _ = _risk()
    assert isinstance(risk.approve(intent(side="yes", count=10)), Approval)
    no = intent(market(bid="0.30", ask="0.31"), side="no", count=10, p="0.85")
    out = risk.approve(no)
    assert isinstance(out, Rejection) and out.check == "both_sides"


def test_limits_count_positions_from_sync() -> None:
    cfg = settings(max_open_positions=2)
    risk, _ = _risk(cfg)
    risk.sync([PositionView("A", "EA", "nfl", "yes", 10, D("5")), PositionView("B", "EB", "nfl", "no", 10, D("5"))],
              D("10000"))
    out = risk.approve(intent(count=10))
    assert isinstance(out, Rejection) and out.check == "position_count"
    # adding to a position already held is not a new position
    risk.sync([PositionView("A", "EA", "nfl", "yes", 10, D("5")),
               PositionView("KXNFLGAME-25DEC28KCBUF-KC", "KXNFLGAME-25DEC28KCBUF", "nfl", "yes", 10, D("5"))])
    assert isinstance(risk.approve(intent(count=10)), Approval)


def test_sport_correlated_and_total_caps() -> None:
    cfg = settings(max_total_exposure=D("1000"), max_exposure_by_sport={"nfl": D("0.30")},
                   max_correlated_exposure=D("250"), max_exposure_per_game=D("100000"))
    risk, _ = _risk(cfg)
    risk.sync([PositionView("A", "EA", "nfl", "yes", 100, D("290"))])  # sport cap is 0.30 x 1000 = 300
    out = risk.approve(intent(count=20))  # ~ $11
    assert isinstance(out, Rejection) and out.check == "sport_exposure"
    risk.sync([PositionView("A", "EA", "nfl", "yes", 100, D("245"), correlation_group="slate")])
    out = risk.approve(intent(replace(market(), correlation_group="slate"), count=20))
    assert isinstance(out, Rejection) and out.check == "correlated_exposure"
    cfg = settings(max_total_exposure=D("300"), max_exposure_by_sport={"nba": D("1")})
    risk, _ = _risk(cfg)
    risk.sync([PositionView("A", "EA", "nba", "yes", 100, D("295"))])
    out = risk.approve(intent(count=20))
    assert isinstance(out, Rejection) and out.check in ("total_exposure", "sport_exposure")


GAME = "KXNFLGAME-25DEC28KCBUF"
game_orders = st.lists(
    st.tuples(st.sampled_from(["KC", "BUF", "SPREAD", "TOTAL"]), st.sampled_from(["yes", "no"]),
              st.integers(min_value=1, max_value=800)),
    min_size=1, max_size=25)


@hsettings(max_examples=60, deadline=None)
@given(game_orders)
def test_game_exposure_holds_across_all_markets_and_both_sides(orders: list[tuple[str, str, int]]) -> None:
    """Whatever sequence of entries is asked for one game, approved money at risk in that game never exceeds
    the per-game cap, positions per game never exceed their cap, and no market is held on both sides."""
    cfg = settings(max_exposure_per_game=D("1500"), max_positions_per_game=3, max_position_dollars=D("1000"),
                   max_position_pct=D("0.25"))
    risk, _ = _risk(cfg)
    held: dict[str, set[str]] = {}
    total = D(0)
    for code, side, count in orders:
        m = market(ticker=f"{GAME}-{code}", event=GAME, bid="0.20", ask="0.21")
        p = "0.40" if side == "yes" else "0.95"
        out = risk.approve(intent(m, side=side, count=count, p=p))
        if isinstance(out, Approval):
            held.setdefault(m.ticker, set()).add(side)
            total += out.cost
        else:
            assert out.check in ("game_exposure", "game_positions", "both_sides", "market_exposure", "balance",
                                 "edge"), out.reason
    assert total == risk.book.by_game.get(GAME, D(0))
    assert total <= D("1500")
    assert len(held) <= 3
    assert all(len(sides) == 1 for sides in held.values())


def test_release_and_fill_move_exposure() -> None:
    risk, _ = _risk()
    approval = risk.approve(intent(count=100))
    assert isinstance(approval, Approval)
    reserved = approval.cost
    risk.on_fill(approval, 40, D("0.52"), D("0.50"))
    assert risk.book.total == reserved * 60 / 100 + D("0.52") * 40 + D("0.50")
    risk.release(approval)
    assert risk.book.total == D("0.52") * 40 + D("0.50")
    assert risk.reserved_cash == 0


def test_trading_hours_when_enabled() -> None:
    cfg = settings(trading_hours_enabled=True)  # weekdays 09:00-23:00 America/New_York
    risk, _ = _risk(cfg)
    out = risk.approve(intent(), now=NOW)  # NOW is a Monday, 04:20 in New York
    assert isinstance(out, Rejection) and out.check == "trading_hours" and "09:00-23:00" in out.reason
    assert isinstance(risk.approve(intent(replace(market(close_in=10 * 3600), quote_ts=NOW + 6 * 3600)),
                                   now=NOW + 6 * 3600),
                      Approval)  # 10:20
