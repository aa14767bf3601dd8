-- depends: 0001_schema
-- Every strategy lifecycle change (draft -> testing -> active -> inactive/deprecated): who, when, why.
CREATE TABLE strategy_status_changes (
    id          BIGSERIAL PRIMARY KEY,
    strategy_id INT NOT NULL REFERENCES strategies (strategy_id) ON DELETE CASCADE,
    from_status VARCHAR(20),
    to_status   VARCHAR(20) NOT NULL,
    reason      TEXT,
    changed_by  VARCHAR(100),
    changed_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_strategy_status_changes_strategy ON strategy_status_changes (strategy_id, changed_at);
CREATE TRIGGER strategy_status_changes_append_only BEFORE UPDATE OR DELETE ON strategy_status_changes FOR EACH ROW
    EXECUTE FUNCTION precog_reject_modification();
