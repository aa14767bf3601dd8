"""Config schemas of the model types, and the config hash (MD5 of canonical JSON, spec REQ-VER-004)."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from precog.domain.jsonutil import canonical
from precog.forecast.elo import EloConfig
from precog.forecast.errors import RegistryError
from precog.forecast.winprob import WpConfig

MODEL_TYPES = ("elo", "regression", "ensemble", "ml", "historical", "fixed", "market")
REF_RE = r"^[a-z][a-z0-9_]{1,99}$"


class EnsembleConfig(BaseModel):
    """Weights of the component models, shrinkage toward 0.5, and which versions the components are."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sport: Literal["nfl"] = "nfl"
    weights: dict[str, float] = Field(default_factory=lambda: {"elo": 0.40, "winprob": 0.45, "historical": 0.15})
    shrinkage: float = Field(default=0.10, ge=0, le=1)
    elo_model: str = "elo_nfl@v1.0"
    winprob_model: str = "wp_nfl@v1.0"
    matrix_name: str = "nfl_game_state"
    matrix_version: str = "v1.0"
    # in-game, the Elo forecast is pre-game information the WP model already uses as a feature: it is
    # dropped ("pregame_only", measured best: docs/models.md), its weight decays with the share of the game
    # played ("time_decay"), or stays fixed ("fixed")
    elo_in_game: Literal["time_decay", "fixed", "pregame_only"] = "pregame_only"
    min_matrix_sample: int = Field(default=30, ge=1)

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = set(v) - {"elo", "winprob", "historical"}
        if unknown:
            raise ValueError(f"unknown component(s) {sorted(unknown)}; use elo, winprob, historical")
        if any(w < 0 for w in v.values()) or sum(v.values()) <= 0:
            raise ValueError("weights must be >= 0 with a positive sum")
        return v


class MatrixModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sport: Literal["nfl"] = "nfl"
    matrix_name: str = "nfl_game_state"
    matrix_version: str = "v1.0"
    min_sample: int = Field(default=30, ge=1)


class FixedConfig(BaseModel):
    """A model that always says the same probability (tests, placeholders)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    probability: Decimal = Field(ge=Decimal("0"), le=Decimal("1"))
    confidence: Literal["high", "medium", "low"] = "low"


SCHEMAS: dict[str, type[BaseModel]] = {
    "elo": EloConfig,
    "regression": WpConfig,
    "ensemble": EnsembleConfig,
    "historical": MatrixModelConfig,
    "fixed": FixedConfig,
}


def normalize_config(model_type: str, config: Any) -> dict[str, Any]:
    """Validate a config against its type's schema; returns the normalized JSON-ready dict."""
    if model_type not in MODEL_TYPES:
        raise RegistryError(f"unknown model type {model_type!r} (one of: {', '.join(MODEL_TYPES)})")
    if not isinstance(config, dict):
        raise RegistryError("a model config must be a JSON object")
    schema = SCHEMAS.get(model_type)
    if schema is None:
        return config
    try:
        return schema.model_validate(config).model_dump(mode="json")
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in exc.errors())
        raise RegistryError(f"invalid {model_type} config: {problems}") from None


def config_hash(config: dict[str, Any]) -> str:
    """MD5 hex digest of the canonical JSON (sorted keys, no whitespace) of a config."""
    return hashlib.md5(canonical(config).encode("utf-8"), usedforsecurity=False).hexdigest()
