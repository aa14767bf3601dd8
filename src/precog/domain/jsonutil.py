"""JSON that keeps Decimals exact (as strings) and datetimes as ISO-8601."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    if isinstance(obj, UUID):
        return str(obj)
    if isinstance(obj, Enum):
        return obj.value
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def dumps(obj: Any, **kwargs: Any) -> str:
    return json.dumps(obj, default=_default, **kwargs)


def canonical(obj: Any) -> str:
    """Canonical JSON (sorted keys, no whitespace) used for config hashes."""
    return json.dumps(obj, default=_default, sort_keys=True, separators=(",", ":"))
