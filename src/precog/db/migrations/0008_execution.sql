-- depends: 0001_schema
-- Execution (issue 8): engine runs, orders with an explicit state machine, and every state transition.
--
-- orders.client_order_id is derived from the decision (method, market, side, action, decision time), so a
-- restarted engine that re-derives the same decision finds the order it already sent instead of sending a
-- second one. order_events is append-only: one row per transition, with the venue's view at that moment.

-- One engine session (precog run / precog demo / tests). Rows written by a session carry its run_id so a
-- report can be restricted to one session (the demo's ledger check) while the tables stay shared.
CREATE TABLE engine_runs (
    run_id        BIGSERIAL PRIMARY KEY,
    kind          VARCHAR(10) NOT NULL CHECK (kind IN ('run', 'demo', 'test', 'benchmark')),
    mode          VARCHAR(10) NOT NULL CHECK (mode IN ('paper', 'live', 'backtest')),
    platform_id   VARCHAR(50) NOT NULL REFERENCES platforms (platform_id),
    environment   VARCHAR(10),
    account_ref   VARCHAR(100),
    trading_state VARCHAR(10) NOT NULL DEFAULT 'ACTIVE' CHECK (trading_state IN ('ACTIVE', 'REDUCING', 'HALTED')),
    state_reason  TEXT,
    started_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    ended_at      TIMESTAMPTZ,
    summary       JSONB
);

CREATE TABLE orders (
    id                 BIGSERIAL PRIMARY KEY,
    client_order_id    VARCHAR(64) NOT NULL UNIQUE,
    venue_order_id     VARCHAR(100),
    run_id             BIGINT REFERENCES engine_runs (run_id) ON DELETE SET NULL,
    platform_id        VARCHAR(50) NOT NULL REFERENCES platforms (platform_id),
    market_id          VARCHAR(150) NOT NULL,
    position_id        BIGINT,
    purpose            VARCHAR(10) NOT NULL CHECK (purpose IN ('entry', 'exit', 'adopted')),
    exit_condition     VARCHAR(30),
    exit_priority      VARCHAR(10) CHECK (exit_priority IS NULL OR exit_priority IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW')),
    decision_key       VARCHAR(200),
    edge_id            BIGINT REFERENCES edges (id) ON DELETE SET NULL,
    method_id          INT REFERENCES methods (method_id) ON DELETE SET NULL,
    strategy_id        INT REFERENCES strategies (strategy_id) ON DELETE SET NULL,
    model_id           INT REFERENCES probability_models (model_id) ON DELETE SET NULL,
    side               VARCHAR(3) NOT NULL CHECK (side IN ('yes', 'no')),
    action             VARCHAR(4) NOT NULL CHECK (action IN ('buy', 'sell')),
    order_type         VARCHAR(10) NOT NULL CHECK (order_type IN ('limit', 'market')),
    time_in_force      VARCHAR(30) NOT NULL DEFAULT 'good_till_canceled',
    limit_price        NUMERIC(10, 4) NOT NULL CHECK (limit_price > 0 AND limit_price < 1),
    quantity           INT NOT NULL CHECK (quantity > 0),
    filled_quantity    INT NOT NULL DEFAULT 0 CHECK (filled_quantity >= 0 AND filled_quantity <= quantity),
    avg_fill_price     NUMERIC(10, 4),
    fees               NUMERIC(14, 4) NOT NULL DEFAULT 0 CHECK (fees >= 0),
    status             VARCHAR(20) NOT NULL CHECK (status IN (
                           'created', 'submitted', 'resting', 'partially_filled', 'filled', 'cancel_pending',
                           'canceled', 'rejected', 'unresolved')),
    mode               VARCHAR(10) NOT NULL DEFAULT 'paper' CHECK (mode IN ('paper', 'live', 'backtest')),
    edge_at_decision   NUMERIC(10, 4),
    confidence         VARCHAR(10) CHECK (confidence IS NULL OR confidence IN ('high', 'medium', 'low')),
    expires_at         TIMESTAMPTZ,
    reject_reason      TEXT,
    metadata           JSONB,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX idx_orders_venue_order ON orders (platform_id, venue_order_id) WHERE venue_order_id IS NOT NULL;
CREATE INDEX idx_orders_open ON orders (status)
    WHERE status IN ('created', 'submitted', 'resting', 'partially_filled', 'cancel_pending', 'unresolved');
CREATE INDEX idx_orders_market ON orders (market_id);
CREATE INDEX idx_orders_position ON orders (position_id);
CREATE INDEX idx_orders_run ON orders (run_id);
CREATE INDEX idx_orders_method ON orders (method_id);

CREATE TABLE order_events (
    event_id      BIGSERIAL PRIMARY KEY,
    order_id      BIGINT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    from_status   VARCHAR(20),
    to_status     VARCHAR(20) NOT NULL CHECK (to_status IN (
                      'created', 'submitted', 'resting', 'partially_filled', 'filled', 'cancel_pending',
                      'canceled', 'rejected', 'unresolved')),
    filled_quantity INT NOT NULL DEFAULT 0,
    reason        TEXT,
    venue_payload JSONB,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_order_events_order ON order_events (order_id, event_id);
CREATE TRIGGER order_events_append_only BEFORE UPDATE OR DELETE ON order_events FOR EACH ROW
    EXECUTE FUNCTION precog_reject_modification();

-- Which fills the engine has already booked (a fill of an order we did not send, e.g. adopted, too).
CREATE INDEX idx_trades_client_order ON trades (client_order_id);
