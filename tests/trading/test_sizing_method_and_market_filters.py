"""Configuration keys a trader sets expecting protection, which used to be accepted and ignored:
trading.yaml position_sizing.method (fixed / fixed_fraction), markets.yaml leagues.<sport>.min_liquidity and
markets.yaml global_filters. Each now changes what is sized or approved (or is refused at load time)."""

from __future__ import annotations

from dataclasses import replace
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import pytest
from trading_dbkit import KC, World, create_testing_method
from trading_testkit import NOW, engine, game, intent, market, venue_market

from precog.config.errors import ConfigError
from precog.config.loader import Config, load_config
from precog.domain.fees import FeeSchedule
from precog.domain.market import Market
from precog.engine.demo import ensure_demo_methods, simulated_market_settings
from precog.engine.entries import (
    Edge,
    EngineRisk,
    EntryPlan,
    MethodSpec,
    PortfolioView,
    RiskLimits,
    plan_entry,
)
from precog.trading.method_config import MethodRuntime
from precog.trading.risk import Approval, Rejection, RiskManager
from precog.trading.scan import run_scan
from precog.trading.settings import SizingMethod, TradingSettings
from precog.trading.sizing import contracts_for, size_position

D = Decimal
EVENT = "KXNFLGAME-25DEC28KCBUF"


def _config(tmp_path: Path, **files: str) -> Config:
    """The packaged configuration with the given user files (name -> YAML text) merged over it."""
    for name, text in files.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    return load_config(tmp_path, use_env=False, use_overrides=False)


def _settings(tmp_path: Path, **files: str) -> TradingSettings:
    return TradingSettings.from_config(_config(tmp_path, **files))


def _sized(cfg: TradingSettings, **market_kw: Any):  # type: ignore[no-untyped-def]
    """The size the decision scan gives a clear YES signal (P 0.75 -> 0.725 against a 0.52 ask)."""
    m = market(bid="0.50", ask="0.52", **market_kw)
    result = engine({m.ticker: "0.75"}, cfg=cfg).scan([m], {EVENT: game(start_in=3 * 3600)}, positions=[],
                                                      balance=D("10000"), now=NOW)
    return result.sized[m.ticker], result


# ------------------------------------------------------------------ trading.yaml position_sizing.method

def test_fixed_sizing_spends_the_configured_amount_per_entry(tmp_path: Path) -> None:
    cfg = _settings(tmp_path, trading="position_sizing:\n  method: fixed\n  fixed_amount_dollars: 40.00\n")
    sized, result = _sized(cfg)
    assert sized.target == D("40.00")  # Kelly would want 10000 x 0.399 x 0.25 (capped at $500)
    assert sized.method == "fixed" and sized.limit == "fixed" and sized.adjustments == ()
    fees = FeeSchedule(taker_rate=cfg.taker_rate)
    count, committed, _fee = contracts_for(D("40.00"), D("0.52"), D("0.0026"), fees)
    assert (sized.count, sized.stake) == (count, committed) and D("39") < committed <= D("40")
    assert len(result.approved) == 1 and result.approved[0].intent.stake == committed


def test_fixed_fraction_sizing_spends_its_share_of_the_bankroll(tmp_path: Path) -> None:
    cfg = _settings(tmp_path, trading="position_sizing:\n  method: fixed_fraction\n  fixed_fraction: 0.01\n")
    sized, result = _sized(cfg)
    assert sized.target == D("100.00") and D("99") < sized.stake <= D("100")  # 1 % of $10,000
    assert sized.method == "fixed_fraction" and sized.limit == "fixed_fraction"
    assert len(result.approved) == 1


def test_fixed_sizing_keeps_every_cap_the_minimum_the_edge_gate_and_special_events(tmp_path: Path) -> None:
    big = _settings(tmp_path, trading="position_sizing:\n  method: fixed\n  fixed_amount_dollars: 5000\n")
    sized, _ = _sized(big)
    assert sized.limit == "max_position_pct" and sized.stake <= D("500")  # 5 % of $10,000
    small = replace(big, sizing=SizingMethod("fixed", fixed_amount=D("5")))
    sized, result = _sized(small)
    assert sized.count == 0 and sized.limit == "below_min_position:fixed" and not result.approved  # < $10
    playoffs = replace(big, sizing=SizingMethod("fixed", fixed_amount=D("40")))
    sized, _ = _sized(playoffs, special_event="playoffs")
    assert sized.target == D("20.0") and sized.fraction == D("0.5")  # playoffs x 0.5, as for Kelly
    no_edge = size_position(p=D("0.50"), price=D("0.52"), fee_per_contract=D("0.02"), slippage=D("0"),
                            fees=FeeSchedule(), bankroll=D("10000"), fraction=D("0.25"), caps=[],
                            min_position=D("10"), method=SizingMethod("fixed", fixed_amount=D("40")))
    assert no_edge.count == 0 and no_edge.limit == "no_edge"


def test_the_trading_loop_planner_sizes_by_the_configured_method(tmp_path: Path) -> None:
    """precog demo / precog run --venue local / backtests plan entries with engine.entries.plan_entry."""
    cfg = _config(tmp_path, trading="position_sizing:\n  method: fixed\n  fixed_amount_dollars: 40.00\n")
    limits = RiskLimits.from_config(cfg.section("trading"), cfg.section("position_management"))
    assert limits.sizing == SizingMethod("fixed", fixed_amount=D("40.00"), fixed_fraction=D("0.02"))
    method = MethodSpec(method_id=1, strategy_id=1, model_id=1, name="m", model_key="k", phase="live")
    pv = PortfolioView(balance=D("10000"), bankroll=D("10000"), open_positions=0, exposure=D("0"),
                       markets_held=frozenset(), positions_by_game={}, exposure_by_game={})
    plan, reason = plan_entry(D("0.75"), venue_market(), method, pv, limits, FeeSchedule(), "KXNFLGAME-T")
    assert plan is not None, reason
    unit = plan.edge.price + plan.edge.fee_per_contract
    assert plan.quantity == int((D("40.00") / unit).to_integral_value(rounding=ROUND_FLOOR))  # 74 at 0.54
    share = replace(limits, sizing=SizingMethod("fixed_fraction", fixed_fraction=D("0.01")))
    plan, _ = plan_entry(D("0.75"), venue_market(), method, pv, share, FeeSchedule(), "KXNFLGAME-T")
    assert plan is not None and plan.quantity == int((D("100") / unit).to_integral_value(rounding=ROUND_FLOOR))


# ------------------------------------------------------------------ markets.yaml leagues.<sport>.min_liquidity

def test_a_league_min_liquidity_stricter_than_the_global_minimum_applies(tmp_path: Path) -> None:
    cfg = _settings(tmp_path, markets="leagues:\n  nfl:\n    min_liquidity: 500\n")
    risk = RiskManager(cfg, clock=lambda: NOW)
    out = risk.approve(intent(market(volume=300), cfg=cfg))
    assert isinstance(out, Rejection) and out.check == "volume" and "minimum 500" in out.reason
    assert isinstance(risk.approve(intent(market(volume=500), cfg=cfg)), Approval)


def test_the_global_minimum_applies_when_stricter_and_a_method_cannot_loosen_it() -> None:
    cfg = TradingSettings.from_config(load_config(use_env=False))  # ncaaf min_liquidity 50, global 100
    risk = RiskManager(cfg, clock=lambda: NOW)
    out = risk.approve(intent(market(sport="ncaaf", volume=75), cfg=cfg))
    assert isinstance(out, Rejection) and out.check == "volume" and "minimum 100" in out.reason
    loose = MethodRuntime.from_configs(method_id=9, name="loose", version="v1.0", status="active",
                                       risk_config={"kelly_fraction": "0.20", "max_position_size_dollars": "750"},
                                       sport_config={"nfl": {"enabled": True, "min_volume": 10}})
    out = risk.approve(intent(market(volume=50), meth=loose, cfg=cfg))
    assert isinstance(out, Rejection) and out.check == "volume" and "minimum 100" in out.reason


# ------------------------------------------------------------------ markets.yaml global_filters

DEFAULTS = TradingSettings.from_config(load_config(use_env=False))


@pytest.mark.parametrize(("check", "make", "says"), [
    ("time_to_close", lambda: market(close_in=1800), "min_hours_to_close"),  # 60 s market filter passes
    ("time_to_close", lambda: market(close_in=31 * 86400), "max_days_to_close"),
    ("time_to_close", lambda: replace(market(), close_ts=None), "close time unknown"),
    ("volume_24h", lambda: market(volume_24h=49), "below minimum 50"),
    ("volume_24h", lambda: market(volume_24h=None), "unknown"),
    ("open_interest", lambda: market(open_interest=99), "below minimum 100"),
    ("open_interest", lambda: market(open_interest=None), "unknown"),
    ("market_type", lambda: market(market_type="scalar"), "binary_only"),
])
def test_global_filters_refuse_what_they_should(check: str, make: Any, says: str) -> None:
    out = RiskManager(DEFAULTS, clock=lambda: NOW).approve(intent(make()))
    assert isinstance(out, Rejection) and out.check == check and says in out.reason, out


def test_a_market_inside_every_global_filter_is_approved() -> None:
    ok = market(close_in=3600, volume_24h=50, open_interest=100)
    assert isinstance(RiskManager(DEFAULTS, clock=lambda: NOW).approve(intent(ok)), Approval)


@pytest.mark.parametrize(("text", "says"), [
    ("global_filters:\n  statuses_allowed: [open, closed]\n", "statuses_allowed"),
    ("global_filters:\n  binary_only: false\n", "binary_only"),
    ("global_filters:\n  min_hours_to_close: 48\n  max_days_to_close: 1\n", "max_days_to_close"),
    ("global_filters:\n  min_volume_24h: -1\n", "min_volume_24h"),
    ("leagues:\n  nfl:\n    min_liquidity: -5\n", "min_liquidity"),
])
def test_impossible_market_filters_are_refused_at_load_time(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        _config(tmp_path, markets=text)


@pytest.mark.parametrize(("text", "says"), [
    ("position_sizing:\n  fixed_amount_dollars: 0\n", "fixed_amount_dollars"),
    ("position_sizing:\n  fixed_fraction: 0.5\n", "fixed_fraction"),
])
def test_impossible_sizing_amounts_are_refused_at_load_time(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        _config(tmp_path, trading=text)


def test_the_trading_loop_gate_reads_the_venue_market_s_filters(db_url: str) -> None:
    """EngineRisk.approve (precog run --venue kalshi/local, demo) hands the venue Market's 24-hour volume, open
    interest and type to the risk gate."""
    import psycopg

    cfg = load_config(use_env=False)
    with psycopg.connect(db_url, autocommit=True) as conn:
        specs = ensure_demo_methods(conn)
        risk = EngineRisk(conn, TradingSettings.from_config(cfg), mode="paper", record=False)
        risk.load_units(specs)
        risk.sync([], D("10000"), now=NOW)
        edge = Edge("yes", D("0.70"), D("0.52"), D("0.02"), D("0.16"))
        plan = EntryPlan("yes", 10, D("0.52"), "limit", "good_till_canceled", edge)

        def approve(m: Market) -> Any:
            return risk.approve(plan, m, specs[0], event_id="KXNFLGAME-T", sport="nfl", confidence="high", now=NOW)

        assert isinstance(approve(venue_market()), Approval)
        for m, check in ((venue_market(volume_24h=D("10")), "volume_24h"),
                         (venue_market(open_interest=None), "open_interest"),
                         (venue_market(market_type="scalar"), "market_type")):
            out = approve(m)
            assert isinstance(out, Rejection) and out.check == check, out


def test_a_scan_from_the_database_reads_the_stored_24h_volume(world: World) -> None:
    create_testing_method(world.conn)
    world.conn.execute("SET session_replication_role = replica")  # the stored version in place (SCD2 set-up)
    world.conn.execute("UPDATE markets SET volume_24h = 10 WHERE market_id = %s AND row_current_ind", (KC,))
    world.conn.execute("SET session_replication_role = origin")
    report = run_scan(world.conn, load_config(use_env=False), world.connect())
    kc = [r for r in report.result.rejections if r.market is not None and r.market.ticker == KC]
    assert [r.check for r in kc] == ["volume_24h"], [(r.check, r.reason) for r in kc]
    assert next(m for m in report.snapshot.markets if m.ticker == KC).open_interest == 1000


def test_simulated_markets_relax_only_the_filters_they_cannot_meet() -> None:
    cfg = load_config(use_env=False)
    configured, sim = TradingSettings.from_config(cfg), simulated_market_settings(cfg)
    assert (configured.min_volume_24h, configured.min_open_interest) == (50, 100)
    assert configured.global_min_seconds_to_close == 3600 and configured.leagues["nfl"].min_liquidity == 100
    assert (sim.min_volume_24h, sim.min_open_interest, sim.global_min_seconds_to_close) == (0, 0, 0)
    assert all(league.min_liquidity == 0 for league in sim.leagues.values())
    # kept: the other global filters, the market filter's own time to close, and the sizing method
    assert sim.max_seconds_to_close == 30 * 86400 and sim.binary_only and sim.statuses_allowed == ("open",)
    assert sim.min_seconds_to_close == configured.min_seconds_to_close and sim.sizing == configured.sizing


# ------------------------------------------------------------------ special events: liquidity (spec 5.3)

@pytest.mark.parametrize(("special", "thin", "deep", "check", "says"), [
    # regular minimums: traded volume 100, 24 h volume 50, open interest 100, 10 contracts at the ask
    ("playoffs", {"volume": 150}, {"volume": 200}, "volume", "below minimum 200; playoffs market: x2.0 liquidity"),
    ("playoffs", {"volume_24h": 99}, {"volume_24h": 100}, "volume_24h", "below minimum 100"),
    ("championship", {"open_interest": 299}, {"open_interest": 300}, "open_interest",
     "below minimum 300 (markets.global_filters.min_open_interest; championship market: x3.0 liquidity)"),
    ("championship", {"ask_size": "29"}, {"ask_size": "30"}, "bid_ask_size", "(minimum 30,"),
])
def test_a_special_event_market_must_show_its_multiple_of_the_liquidity_minimums(
        special: str, thin: dict[str, Any], deep: dict[str, Any], check: str, says: str) -> None:
    risk = RiskManager(DEFAULTS, clock=lambda: NOW)
    base = {"volume": 1000, "volume_24h": 1000, "open_interest": 1000, "ask_size": "1000", "special_event": special}
    out = risk.approve(intent(market(**{**base, **thin})))
    assert isinstance(out, Rejection) and out.check == check and says in out.reason, out
    assert isinstance(risk.approve(intent(market(**{**base, **deep}))), Approval)
    # the same thin market is enough outside the special event
    assert isinstance(risk.approve(intent(market(**{**base, **thin, "special_event": None}))), Approval)


def test_special_event_liquidity_multipliers_are_configurable_and_range_checked(tmp_path: Path) -> None:
    cfg = _settings(tmp_path, trading="position_sizing:\n  special_events:\n    playoffs_liquidity_multiplier: 1.5\n")
    risk = RiskManager(cfg, clock=lambda: NOW)
    out = risk.approve(intent(market(volume=149, special_event="playoffs"), cfg=cfg))
    assert isinstance(out, Rejection) and "below minimum 150" in out.reason
    assert isinstance(risk.approve(intent(market(volume=150, special_event="playoffs"), cfg=cfg)), Approval)
    for bad in ("0.5", "11"):
        (tmp_path / bad).mkdir()
        with pytest.raises(ConfigError, match="playoffs_liquidity_multiplier") as err:
            _config(tmp_path / bad,
                    trading=f"position_sizing:\n  special_events:\n    playoffs_liquidity_multiplier: {bad}\n")
        assert "trading.yaml" in str(err.value), err.value
