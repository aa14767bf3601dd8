"""position_management.yaml `portfolio.max_exposure_by_sport`: NCAAF gets the 0.20 share of the total exposure cap that
spec 4.3 / 5.3 give every sport not listed (nfl 0.60, nba 0.40, mlb 0.30, others 0.20).

The audit found the packaged default at 0.40 for NCAAF: twice the spec's share of the book in college football.
"""

from __future__ import annotations

from decimal import Decimal

from trading_testkit import NOW, intent, market, settings, strategy

from precog.config.loader import load_config
from precog.trading.risk import Approval, Rejection, RejectionLog, RiskManager
from precog.trading.views import PositionView

D = Decimal
EVENT = "KXNCAAFGAME-25NOV29OSUMICH"


def test_the_packaged_sport_shares_follow_the_spec() -> None:
    shares = load_config(use_env=False).get("position_management.portfolio.max_exposure_by_sport")
    assert {k: D(str(v)) for k, v in shares.items()} == {
        "nfl": D("0.60"), "ncaaf": D("0.20"), "nba": D("0.40"), "mlb": D("0.30"), "nhl": D("0.20"),
        "soccer": D("0.20"), "tennis": D("0.20")}


def test_college_football_exposure_stops_at_a_fifth_of_the_total_cap() -> None:
    cfg = settings(max_exposure_per_game=D("100000"))  # the packaged defaults, one game's cap out of the way
    assert cfg.max_total_exposure == D("10000")
    risk = RiskManager(cfg, recorder=RejectionLog(), clock=lambda: NOW)
    ncaaf = market(f"{EVENT}-MICH", event=EVENT, sport="ncaaf")
    room = dict(risk.headroom(ncaaf, strategy("pre_game_entry"), None))
    assert room["sport_exposure"] == D("2000.00")  # 0.20 x $10,000
    # $1,995 already in another college game: an entry of about $11 more is refused on the sport's share
    risk.sync([PositionView("KXNCAAFGAME-X-A", "KXNCAAFGAME-X", "ncaaf", "yes", 1000, D("1995"))])
    refused = risk.approve(intent(ncaaf, count=20))
    assert isinstance(refused, Rejection) and refused.check == "sport_exposure", refused
    # the same in the NFL (0.60 share) is still room
    nfl = market()
    risk.sync([PositionView("KXNFLGAME-X-A", "KXNFLGAME-X", "nfl", "yes", 1000, D("1995"))])
    assert isinstance(risk.approve(intent(nfl, count=20)), Approval)
