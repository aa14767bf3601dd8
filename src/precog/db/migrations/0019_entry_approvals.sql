-- depends: 0008_execution 0018_settlement_verifications
-- Spec 5.2 / ADR-009: live trading on production needs (initially) manual approval of each entry. An entry the
-- trading loop decided while approval is required is kept here as `pending` instead of being sent; a person
-- approves or rejects it (`precog approvals`), the loop re-checks an approved one against the market and the
-- risk limits of that moment and sends it with the client_order_id stored here (the decision's own, so a crash
-- between approving and sending never sends it twice), and one nobody answered before expires_at expires.
-- Exits never come here.
CREATE TABLE entry_approvals (
    approval_id      BIGSERIAL PRIMARY KEY,
    -- the decision without its time bucket (mode|account|method/strategy/model|market|side|buy): at most one
    -- outstanding row per key, so the same decision on the next cycles adds no second row
    approval_key     VARCHAR(300) NOT NULL,
    decision_key     VARCHAR(200) NOT NULL,
    client_order_id  VARCHAR(64) NOT NULL,
    run_id           BIGINT REFERENCES engine_runs (run_id) ON DELETE SET NULL,
    platform_id      VARCHAR(50) NOT NULL REFERENCES platforms (platform_id),
    account_ref      VARCHAR(100),
    mode             VARCHAR(10) NOT NULL CHECK (mode IN ('paper', 'live')),
    environment      VARCHAR(10),
    created_at       TIMESTAMPTZ NOT NULL,
    expires_at       TIMESTAMPTZ NOT NULL CHECK (expires_at > created_at),
    market_id        VARCHAR(150) NOT NULL,
    event_id         VARCHAR(150),
    sport            VARCHAR(20),
    side             VARCHAR(3) NOT NULL CHECK (side IN ('yes', 'no')),
    count            INT NOT NULL CHECK (count > 0),
    limit_price      NUMERIC(10, 4) NOT NULL CHECK (limit_price > 0 AND limit_price < 1),
    order_type       VARCHAR(10) NOT NULL CHECK (order_type IN ('limit', 'market')),
    -- what the entry commits at most (contracts x limit + fees): held against the exposure limits while the
    -- row is pending, so entries approved together never exceed them
    reserved_cost    NUMERIC(14, 4) NOT NULL CHECK (reserved_cost >= 0),
    edge             NUMERIC(10, 4),
    confidence       VARCHAR(10) CHECK (confidence IS NULL OR confidence IN ('high', 'medium', 'low')),
    method_id        INT REFERENCES methods (method_id) ON DELETE SET NULL,
    strategy_id      INT REFERENCES strategies (strategy_id) ON DELETE SET NULL,
    model_id         INT REFERENCES probability_models (model_id) ON DELETE SET NULL,
    edge_id          BIGINT REFERENCES edges (id) ON DELETE SET NULL,
    details          JSONB NOT NULL DEFAULT '{}'::jsonb,
    status           VARCHAR(10) NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'approved', 'rejected', 'expired', 'submitted')),
    decided_by       VARCHAR(100),
    decided_at       TIMESTAMPTZ,
    reason           TEXT,
    -- why an approved entry was not sent at the last check (price above the approved limit, a breaker, ...)
    not_sent_reason  TEXT,
    checked_at       TIMESTAMPTZ,
    submitted_at     TIMESTAMPTZ,
    CHECK (status NOT IN ('approved', 'rejected', 'submitted') OR (decided_by IS NOT NULL AND decided_at IS NOT NULL)),
    CHECK (status <> 'submitted' OR submitted_at IS NOT NULL)
);
CREATE UNIQUE INDEX idx_entry_approvals_outstanding ON entry_approvals (approval_key)
    WHERE status IN ('pending', 'approved');
CREATE INDEX idx_entry_approvals_account ON entry_approvals (platform_id, mode, account_ref, status);
CREATE INDEX idx_entry_approvals_created ON entry_approvals (created_at DESC);
