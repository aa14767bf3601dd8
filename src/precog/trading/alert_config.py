"""trading.yaml `alerts`: the section and its share-valued keys, checked the same way for every alert rule
(the loader's schema checks them at load; a rule built from a hand-made mapping is checked again here)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

ONE = Decimal("1")


def alerts_section(trading: Mapping[str, Any], keys: str) -> Mapping[str, Any]:
    """trading.yaml's `alerts` mapping; `keys` names what the caller needs from it (for the error)."""
    section = trading.get("alerts")
    if not isinstance(section, Mapping):
        raise ValueError(f"trading.alerts must be a mapping with {keys}")
    return section


def share(section: Mapping[str, Any], key: str, above: Decimal = Decimal("0")) -> Decimal:
    """A share in the open interval (`above`, 1)."""
    value = section.get(key)
    if isinstance(value, bool) or not isinstance(value, int | Decimal) or not above < value < ONE:
        raise ValueError(f"trading.alerts.{key} must be in ({above}, 1), got {value!r}")
    return Decimal(value)
