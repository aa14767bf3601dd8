"""Inhibition rules (system.notifications.inhibit_rules): while a source alert fires, target alerts are stored
but not delivered. Example: while `venue_down` is firing, `order_rejected` and `api_failure` stay quiet.

"Firing" = an unsuppressed, unresolved alert of the source type raised within the rule's max_age_minutes (so a
forgotten, never-resolved source cannot mute its targets for ever). `equal` lists fields (component,
environment, category) that must match between source and target.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg

from precog.alerts.settings import InhibitRule

_EQUAL_COLUMNS = {"component": "component", "environment": "environment", "category": "category"}


def rules_for(rules: tuple[InhibitRule, ...], alert_type: str) -> list[InhibitRule]:
    return [r for r in rules if alert_type in r.target_types and r.source_type != alert_type]


def inhibiting_alert(conn: psycopg.Connection[Any], rules: tuple[InhibitRule, ...], *, alert_type: str,
                     fields: dict[str, str | None], now: datetime, exclude_id: int | None = None) -> int | None:
    """The id of a firing source alert that inhibits an alert of `alert_type` with `fields`, else None."""
    for rule in rules_for(rules, alert_type):
        where = ["alert_type = %s", "NOT suppressed", "resolved_at IS NULL", "triggered_at > %s", "triggered_at <= %s"]
        params: list[Any] = [rule.source_type, now - timedelta(minutes=rule.max_age_minutes), now]
        for name in rule.equal:
            column = _EQUAL_COLUMNS[name]
            where.append(f"{column} IS NOT DISTINCT FROM %s")
            params.append(fields.get(name))
        if exclude_id is not None:
            where.append("alert_id <> %s")
            params.append(exclude_id)
        row = conn.execute(
            f"SELECT alert_id FROM alerts WHERE {' AND '.join(where)} ORDER BY triggered_at DESC LIMIT 1",  # noqa: S608
            params).fetchone()
        if row is not None:
            return int(row[0])
    return None
