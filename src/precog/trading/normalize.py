"""Config normalisation for hashing: equal numbers hash equally however they were written.

`0.20`, `"0.2"` and `Decimal("0.200")` are the same setting, so a config hash (duplicate detection,
immutability checks) is taken over a copy where every number - int, Decimal, or a string that is a plain
decimal literal - becomes its shortest decimal string. Booleans and other strings stay as they are.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


def number_text(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def normalized_for_hash(obj: Any) -> Any:
    if isinstance(obj, bool) or obj is None:
        return obj
    if isinstance(obj, int | Decimal):
        return number_text(Decimal(obj))
    if isinstance(obj, str):
        return number_text(Decimal(obj)) if _NUMBER.match(obj.strip()) else obj
    if isinstance(obj, dict):
        return {str(k): normalized_for_hash(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [normalized_for_hash(v) for v in obj]
    return obj
