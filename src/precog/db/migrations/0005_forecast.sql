-- depends: 0001_schema
-- Forecasting (issue 6): idempotent Elo history per model version, unique matrix cells, evaluation runs
-- and the audit trail of model lifecycle changes.

-- Elo history rows carry the game they come from, so re-training a model version on a longer games file
-- appends only the new games (ON CONFLICT DO NOTHING) instead of duplicating history.
ALTER TABLE elo_rating_history ADD COLUMN game_key VARCHAR(100);
ALTER TABLE elo_rating_history ADD COLUMN season INT;
CREATE UNIQUE INDEX idx_elo_history_game ON elo_rating_history (model_id, team_id, game_key)
    WHERE model_id IS NOT NULL AND game_key IS NOT NULL;
CREATE INDEX idx_elo_history_model ON elo_rating_history (model_id, game_date);

-- One row per matrix cell and version.
CREATE UNIQUE INDEX idx_probability_matrices_cell
    ON probability_matrices (matrix_name, version, state_descriptor, value_bucket, situational_factors);

-- Every `precog forecast evaluate` run that was recorded against a model version.
CREATE TABLE model_evaluations (
    evaluation_id      SERIAL PRIMARY KEY,
    model_id           INT NOT NULL REFERENCES probability_models (model_id) ON DELETE CASCADE,
    data_file          TEXT NOT NULL,
    data_sha256        VARCHAR(64) NOT NULL,
    from_season        INT,
    sample_size        INT NOT NULL CHECK (sample_size >= 0),
    brier              NUMERIC(10, 6),
    log_loss           NUMERIC(10, 6),
    accuracy           NUMERIC(10, 4),
    max_calibration_error NUMERIC(10, 4),
    published_brier    NUMERIC(10, 6),
    metrics            JSONB NOT NULL,
    created_by         VARCHAR(100),
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_model_evaluations_model ON model_evaluations (model_id, created_at DESC);
CREATE TRIGGER model_evaluations_append_only BEFORE UPDATE OR DELETE ON model_evaluations FOR EACH ROW
    EXECUTE FUNCTION precog_reject_modification();

-- Lifecycle audit: who moved which model version from which status to which, and why.
CREATE TABLE model_status_changes (
    change_id   SERIAL PRIMARY KEY,
    model_id    INT NOT NULL REFERENCES probability_models (model_id) ON DELETE CASCADE,
    from_status VARCHAR(20),
    to_status   VARCHAR(20) NOT NULL,
    reason      TEXT,
    changed_by  VARCHAR(100),
    changed_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_model_status_changes_model ON model_status_changes (model_id, changed_at);
CREATE TRIGGER model_status_changes_append_only BEFORE UPDATE OR DELETE ON model_status_changes FOR EACH ROW
    EXECUTE FUNCTION precog_reject_modification();
