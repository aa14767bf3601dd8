"""Rebuild the shipped default models' artifact and manifest from the shared data (maintainers only).

    .venv/bin/python -m precog.forecast.ship [--data DIR]

Trains wp_nfl v1.0 on the nflfastR plays (80% of games, 20% held out by game id), scores it on the held-out
games, scores elo_nfl v1.0 on the 538 games of seasons 2010-2014, and writes `artifacts/wp_nfl.npz` and
`artifacts/manifest.json` (SHA-256 of the artifact and the validation numbers that go into the registry).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from precog.forecast.builtin import MANIFEST, artifacts_dir
from precog.forecast.configs import EnsembleConfig
from precog.forecast.elo import TUNED_NFL_CONFIG
from precog.forecast.evaluate import evaluate_games, evaluate_plays
from precog.forecast.gamesfile import read_games, read_initial_ratings
from precog.forecast.metrics import CALIBRATION_MIN_N, max_calibration_error
from precog.forecast.plays import read_plays
from precog.forecast.winprob import WpConfig, sha256_file, train
from precog.paths import shared_data_dir

PLAYS = "nfl/nflfastr_wp_plays_2020_2022.csv.gz"
GAMES = "nfl/fivethirtyeight_nfl_games_1920_2014.csv"
INITIAL = "nfl/initial_elos.csv"


def build(data: Path, out_dir: Path) -> dict[str, object]:
    plays_path = data / PLAYS
    config = WpConfig(training_data_sha256=sha256_file(plays_path), training_file=plays_path.name)
    plays = read_plays(plays_path, require_outcomes=True)
    result = train(plays, config)
    artifact = out_dir / "wp_nfl.npz"
    digest = result.model.save(artifact)
    report = evaluate_plays(plays, model_ref="wp_nfl@v1.0", model_type="regression",
                            config=config.model_dump(mode="json"), data_file=str(plays_path), model=result.model)
    s = report.scores
    wp_entry = {
        "version": "v1.0", "file": artifact.name, "sha256": digest, "config": config.model_dump(mode="json"),
        "validation": {"brier": round(s.brier, 6), "accuracy": round(s.accuracy, 4), "sample_size": s.n,
                       "max_calibration_error": round(max_calibration_error(report.calibration, CALIBRATION_MIN_N), 4),
                       "published_brier": round(report.published_scores.brier, 6) if report.published_scores else None,
                       "training_sample_size": result.train_plays, "held_out_games": result.test_games},
    }
    ens_cfg = EnsembleConfig()
    ens = evaluate_plays(plays, model_ref="ensemble_nfl@v1.0", model_type="ensemble",
                         config=ens_cfg.model_dump(mode="json"), data_file=str(plays_path), model=result.model,
                         ensemble_wp_config=config, elo_config=TUNED_NFL_CONFIG).scores
    games = read_games(data / GAMES, require_results=True)
    elo_games = [g for g in games if g.season <= 2014]
    elo_report = evaluate_games(elo_games, model_ref="elo_nfl@v1.0", model_type="elo",
                                config=TUNED_NFL_CONFIG.model_dump(mode="json"), data_file=str(data / GAMES),
                                initial=read_initial_ratings(data / INITIAL), from_season=2010)
    es = elo_report.scores
    manifest: dict[str, object] = {
        "wp_nfl": wp_entry,
        "elo_nfl": {"version": "v1.0", "validation": {
            "brier": round(es.brier, 6), "accuracy": round(es.accuracy, 4), "sample_size": es.n,
            "max_calibration_error": round(max_calibration_error(elo_report.calibration, 1), 4),
            "published_brier": round(elo_report.published_scores.brier, 6) if elo_report.published_scores else None,
            "seasons": "2010-2014"}},
        "ensemble_nfl": {"version": "v1.0", "validation": {
            "brier": round(ens.brier, 6), "accuracy": round(ens.accuracy, 4), "sample_size": ens.n,
            "note": "in-game, held-out games of wp_nfl v1.0, with shrinkage 0.10"}},
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=shared_data_dir(), help="the shared data folder")
    parser.add_argument("--out", type=Path, default=artifacts_dir(), help="where to write the artifact")
    args = parser.parse_args()
    if args.data is None:
        raise SystemExit("the shared data folder was not found; pass --data")
    print(json.dumps(build(args.data, args.out), indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
