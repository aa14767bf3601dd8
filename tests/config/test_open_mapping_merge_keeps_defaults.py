"""A user file changing one entry of an open mapping (leagues, sport fractions, breaker resets, Elo per sport)
keeps the other entries and the entry's other keys.

docs/configuration.md: "Your file holds **only the keys you change**; it is merged over the default", and it
lists `markets.leagues.<sport>.enabled` as a key people change. Open mappings only differ in that new keys
(a new sport, a new strategy) are allowed; they used to be replaced wholesale, so `leagues: {nfl: {enabled:
false}}` was refused (series_ticker "required") and `circuit_breakers.reset: {daily_loss_limit: 60}`
silently dropped every other breaker's reset rule.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from precog.config.errors import ConfigError
from precog.config.loader import load_config


def _load(tmp_path: Path, name: str, text: str):  # type: ignore[no-untyped-def]
    (tmp_path / name).write_text(text)
    return load_config(tmp_path, use_env=False, use_overrides=False)


def test_disabling_one_league_keeps_its_other_keys_and_the_other_leagues(tmp_path: Path):
    cfg = _load(tmp_path, "markets.yaml", "leagues:\n  nfl:\n    enabled: false\n")
    assert cfg.get("markets.leagues.nfl.enabled") is False
    assert cfg.get("markets.leagues.nfl.series_ticker") == "KXNFLGAME"
    assert cfg.get("markets.leagues.ncaaf.enabled") is True
    assert set(cfg.get("markets.leagues")) >= {"nfl", "ncaaf", "nba", "mlb"}


def test_one_sport_fraction_or_breaker_reset_keeps_the_others(tmp_path: Path):
    cfg = _load(tmp_path, "trading.yaml",
                "position_sizing:\n  sport_fractions:\n    nfl: 0.30\n"
                "circuit_breakers:\n  reset:\n    rapid_loss: 60\n")
    assert cfg.get("trading.position_sizing.sport_fractions.nfl") == Decimal("0.30")
    assert cfg.get("trading.position_sizing.sport_fractions.nba") == Decimal("0.22")
    assert cfg.get("trading.circuit_breakers.reset.rapid_loss") == 60
    assert cfg.get("trading.circuit_breakers.reset.daily_loss_limit") == "manual"


def test_elo_change_keeps_the_sports_other_parameters(tmp_path: Path):
    cfg = _load(tmp_path, "probability_models.yaml", "elo:\n  nfl:\n    k_factor: 25\n")
    assert cfg.get("probability_models.elo.nfl.k_factor") == 25
    assert cfg.get("probability_models.elo.nfl.initial_rating") == 1505
    assert cfg.get("probability_models.elo.nba.k_factor") == 20


def test_new_entries_are_still_allowed_and_still_validated(tmp_path: Path):
    cfg = _load(tmp_path, "trading.yaml", "position_sizing:\n  sport_fractions:\n    nhl: 0.10\n")
    assert cfg.get("trading.position_sizing.sport_fractions.nhl") == Decimal("0.10")
    assert cfg.get("trading.position_sizing.sport_fractions.nfl") == Decimal("0.25")
    (tmp_path / "markets.yaml").write_text("leagues:\n  nhl:\n    enabled: true\n")
    with pytest.raises(ConfigError, match="leagues.nhl.series_ticker' is required"):
        load_config(tmp_path, use_env=False, use_overrides=False)
