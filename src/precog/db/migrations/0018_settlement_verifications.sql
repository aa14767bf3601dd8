-- depends: 0001_schema 0017_method_templates_supported_keys
-- Spec position_management `settlement`: "verify settlements, log disputes". A settlement is compared with the
-- venue's own (contracts per side, payout, outcome and value) when it is booked, and the comparison is kept in
-- the settlement row's api_response (`verified`, `differences`). When the venue had not listed its settlement
-- yet, the row is written without one and the next reconciliation compares it. settlements is append-only (its
-- api_response cannot be filled in afterwards), so that later comparison needs a table of its own: one row per
-- market compared, naming the settlement rows it covers. Append-only as well: a verification is history.
CREATE TABLE settlement_verifications (
    verification_id  BIGSERIAL PRIMARY KEY,
    market_id        VARCHAR(150) NOT NULL,
    platform_id      VARCHAR(50) NOT NULL REFERENCES platforms (platform_id) ON DELETE CASCADE,
    mode             VARCHAR(10) NOT NULL CHECK (mode IN ('paper', 'live', 'backtest')),
    settlement_ids   BIGINT[] NOT NULL CHECK (cardinality(settlement_ids) > 0),
    verified         BOOLEAN NOT NULL,
    differences      JSONB NOT NULL DEFAULT '[]'::jsonb,
    venue_settlement JSONB NOT NULL,
    verified_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (verified = (differences = '[]'::jsonb))
);
CREATE INDEX idx_settlement_verifications_market ON settlement_verifications (market_id);
CREATE INDEX idx_settlement_verifications_settlements ON settlement_verifications USING GIN (settlement_ids);
CREATE TRIGGER settlement_verifications_append_only BEFORE UPDATE OR DELETE ON settlement_verifications
    FOR EACH ROW EXECUTE FUNCTION precog_reject_modification();
-- every reconciliation looks for settlement rows written without the venue's settlement: few, so a partial index
CREATE INDEX idx_settlements_unverified ON settlements (platform_id, mode, settlement_timestamp)
    WHERE api_response IS NULL;
