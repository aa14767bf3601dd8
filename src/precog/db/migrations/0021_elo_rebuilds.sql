-- depends: 0019_entry_approvals
-- `precog forecast elo update --rebuild-from DAY` takes back an Elo version's rated games from DAY on and plays
-- them again in order (a result stored late, a corrected final score). elo_rating_history stays append-only for
-- everything else: its rows may be deleted only inside a transaction that set `precog.elo_rebuild` (SET LOCAL),
-- and the rebuild first archives every row it removes here (append-only), so no rating history is ever lost.
CREATE TABLE elo_rating_rebuilds (
    rebuild_id    BIGSERIAL PRIMARY KEY,
    model_id      INT REFERENCES probability_models (model_id) ON DELETE SET NULL,
    sport         VARCHAR(20) NOT NULL,
    from_date     DATE NOT NULL,
    rows_removed  INT NOT NULL CHECK (rows_removed >= 0),
    removed_rows  JSONB NOT NULL,  -- the elo_rating_history rows as they were (to_jsonb of each row)
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_elo_rebuilds_model ON elo_rating_rebuilds (model_id, created_at);
CREATE TRIGGER elo_rating_rebuilds_append_only BEFORE UPDATE OR DELETE ON elo_rating_rebuilds FOR EACH ROW
    EXECUTE FUNCTION precog_reject_modification();

CREATE FUNCTION precog_reject_elo_history_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('precog.elo_rebuild', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'table % is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;
DROP TRIGGER elo_rating_history_append_only ON elo_rating_history;
CREATE TRIGGER elo_rating_history_append_only BEFORE UPDATE OR DELETE ON elo_rating_history FOR EACH ROW
    EXECUTE FUNCTION precog_reject_elo_history_change();
