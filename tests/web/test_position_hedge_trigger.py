"""The dashboard's exit-trigger chips include the spec 5.11 hedge while it can still fire for the position: its
threshold (the unrealized gain that fires it) and the distance to it, `near` within 3 points; not once the position
was hedged, nor where the rules have no hedge."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from precog.trading.exits import ExitRules, HedgeRules
from precog.web.queries import exit_triggers

D = Decimal
ON = ExitRules.from_config({}, {"enabled": True})


def _pos(price: str, **kw: Any) -> dict[str, Any]:
    return {"entry_price": D("0.50"), "current_price": D(price), "confidence": "medium", **kw}


def _hedge(pos: dict[str, Any], rules: ExitRules = ON) -> dict[str, Any] | None:
    return next((t for t in exit_triggers(pos, rules, datetime.now(UTC)) if t["trigger"] == "hedge"), None)


def test_hedge_chip_distance_and_near() -> None:
    far = _hedge(_pos("0.60"))  # +20 %: 20 points from the 40 % trigger
    assert far == {"trigger": "hedge", "threshold": D("0.40"), "distance": D("0.20"), "near": False}
    near = _hedge(_pos("0.69"))  # +38 %
    assert near is not None and near["distance"] == D("0.02") and near["near"]


def test_no_hedge_chip_once_hedged_or_without_the_hedge() -> None:
    assert _hedge(_pos("0.69", hedged=True)) is None
    assert _hedge(_pos("0.69"), ExitRules.from_config({})) is None
    off = ExitRules.from_config({}, {"enabled": True})
    assert _hedge(_pos("0.69"), ExitRules(**{**off.__dict__, "hedge": HedgeRules(enabled=False)})) is None
