-- depends: 0001_schema
-- Trading decisions (issue 7): the persisted trading state with its history, every pre-trade risk
-- rejection with its reason, and the circuit breakers' counters that must survive a restart.

-- ACTIVE / REDUCING (exits only) / HALTED, one row per change: who, when, why. The newest row is the state.
CREATE TABLE trading_state_history (
    id               BIGSERIAL PRIMARY KEY,
    mode             VARCHAR(10) NOT NULL CHECK (mode IN ('ACTIVE', 'REDUCING', 'HALTED')),
    liquidate        BOOLEAN NOT NULL DEFAULT FALSE,  -- HALTED with forced close-all exits (daily loss ...)
    reason           TEXT NOT NULL,
    changed_by       VARCHAR(100) NOT NULL,
    blocking         JSONB NOT NULL DEFAULT '[]'::jsonb,  -- the open breakers that hold the state
    breaker_event_id BIGINT REFERENCES circuit_breaker_events (event_id) ON DELETE SET NULL,
    environment      VARCHAR(10),
    changed_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_trading_state_history_changed ON trading_state_history (changed_at DESC, id DESC);
CREATE TRIGGER trading_state_history_append_only BEFORE UPDATE OR DELETE ON trading_state_history FOR EACH ROW
    EXECUTE FUNCTION precog_reject_modification();

-- Every order intent the risk manager refused (and every signal that sized to zero), with the check and reason.
CREATE TABLE risk_rejections (
    id                 BIGSERIAL PRIMARY KEY,
    rejected_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    check_name         VARCHAR(40) NOT NULL,
    reason             TEXT NOT NULL,
    market_id          VARCHAR(150),
    event_id           VARCHAR(100),
    sport              VARCHAR(20),
    side               VARCHAR(3) CHECK (side IS NULL OR side IN ('yes', 'no')),
    strategy_id        INT REFERENCES strategies (strategy_id) ON DELETE SET NULL,
    model_id           INT REFERENCES probability_models (model_id) ON DELETE SET NULL,
    method_id          INT REFERENCES methods (method_id) ON DELETE SET NULL,
    edge               NUMERIC(10, 4),
    quantity           INT,
    stake              NUMERIC(14, 4),
    mode               VARCHAR(10) CHECK (mode IS NULL OR mode IN ('paper', 'live', 'backtest')),
    calculation_run_id UUID,
    details            JSONB
);
CREATE INDEX idx_risk_rejections_at ON risk_rejections (rejected_at DESC);
CREATE INDEX idx_risk_rejections_check ON risk_rejections (check_name);
CREATE INDEX idx_risk_rejections_market ON risk_rejections (market_id);
CREATE INDEX idx_risk_rejections_run ON risk_rejections (calculation_run_id);
CREATE TRIGGER risk_rejections_append_only BEFORE UPDATE OR DELETE ON risk_rejections FOR EACH ROW
    EXECUTE FUNCTION precog_reject_modification();

-- Counters of the breakers that span a restart (consecutive losses, realized P&L events of the last week,
-- recent trade times), one JSON document per counter set, updated in place.
CREATE TABLE breaker_counters (
    breaker_type VARCHAR(40) PRIMARY KEY,
    counters     JSONB NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Each method with the strategy and model versions it bundles (precog methods list, reports).
CREATE VIEW method_versions AS
SELECT me.method_id, me.method_name, me.method_version, me.status, me.capital_share, me.config_hash,
       s.strategy_name, s.strategy_version, m.model_name, m.model_version
FROM methods me
JOIN strategies s ON s.strategy_id = me.strategy_id
JOIN probability_models m ON m.model_id = me.model_id;

-- Every method lifecycle change (draft -> testing -> active -> inactive -> deprecated): who, when, why.
CREATE TABLE method_status_changes (
    id          BIGSERIAL PRIMARY KEY,
    method_id   INT NOT NULL REFERENCES methods (method_id) ON DELETE CASCADE,
    from_status VARCHAR(20),
    to_status   VARCHAR(20) NOT NULL,
    reason      TEXT,
    changed_by  VARCHAR(100),
    changed_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_method_status_changes_method ON method_status_changes (method_id, changed_at);
CREATE TRIGGER method_status_changes_append_only BEFORE UPDATE OR DELETE ON method_status_changes FOR EACH ROW
    EXECUTE FUNCTION precog_reject_modification();
