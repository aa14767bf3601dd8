"""The models that ship with Precog, so a fresh install forecasts at once.

- elo_nfl v1.0: Elo tuned on 1990-2009 (see docs/models.md);
- wp_nfl v1.0: the in-game model trained on the shared nflfastR plays (80% of games; the rest held out),
  stored as `artifacts/wp_nfl.npz` whose SHA-256 is in `artifacts/manifest.json` and in the registry row;
- ensemble_nfl v1.0: the two plus the historical matrices, weights from probability_models.yaml.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from precog.forecast.configs import EnsembleConfig
from precog.forecast.elo import TUNED_NFL_CONFIG
from precog.forecast.errors import ArtifactError
from precog.forecast.winprob import WpModel

PACKAGE_PREFIX = "package:"
MANIFEST = "manifest.json"


def artifacts_dir() -> Path:
    return Path(str(resources.files("precog.forecast") / "artifacts"))


def resolve_artifact(path: str) -> Path:
    """A registry `artifact_path`: `package:NAME` (shipped with Precog) or a filesystem path."""
    if path.startswith(PACKAGE_PREFIX):
        return artifacts_dir() / path[len(PACKAGE_PREFIX):]
    return Path(path)


@lru_cache(maxsize=1)
def manifest() -> dict[str, Any]:
    path = artifacts_dir() / MANIFEST
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"the packaged model manifest {path} is missing or unreadable: {exc}") from exc
    return data


def builtin_wp_entry() -> dict[str, Any]:
    entry: dict[str, Any] = manifest()["wp_nfl"]
    return entry


@lru_cache(maxsize=1)
def load_builtin_wp() -> WpModel:
    entry = builtin_wp_entry()
    return WpModel.load(artifacts_dir() / entry["file"], entry["sha256"])


def builtin_models() -> list[dict[str, Any]]:
    """Registry rows of the shipped models (inserted once by `registry.ensure_builtin_models`)."""
    wp = builtin_wp_entry()
    elo_meta = manifest().get("elo_nfl", {})
    return [
        {
            "model_name": "elo_nfl", "model_version": "v1.0", "model_type": "elo", "sport": "nfl",
            "subcategory": "nfl", "config": TUNED_NFL_CONFIG.model_dump(mode="json"),
            "description": "NFL Elo (538 method, tuned on 1990-2009: season regression 0.45, playoff x1.4)",
            "validation": elo_meta.get("validation", {}),
            "artifact_path": None, "artifact_sha256": None,
        },
        {
            "model_name": "wp_nfl", "model_version": wp["version"], "model_type": "regression", "sport": "nfl",
            "subcategory": "nfl", "config": wp["config"],
            "description": "NFL in-game win probability (time-varying logistic regression on nflfastR plays)",
            "validation": wp.get("validation", {}),
            "artifact_path": PACKAGE_PREFIX + wp["file"], "artifact_sha256": wp["sha256"],
        },
        {
            "model_name": "ensemble_nfl", "model_version": "v1.0", "model_type": "ensemble", "sport": "nfl",
            "subcategory": "nfl", "config": EnsembleConfig().model_dump(mode="json"),
            "description": "Weighted ensemble of elo_nfl, wp_nfl and the historical matrices, shrunk toward 0.5",
            "validation": manifest().get("ensemble_nfl", {}).get("validation", {}),
            "artifact_path": None, "artifact_sha256": None,
        },
    ]
