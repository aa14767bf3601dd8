-- Precog operational schema (spec section 2, with the fixes of section 11).
--
-- Conventions
--   * prices / probabilities: NUMERIC(10,4) in [0, 1]; money amounts: NUMERIC(14,4); Elo: NUMERIC(10,2)
--   * SCD2 tables (markets, game_states, edges, positions, account_balance): one row per version,
--     surrogate `id`, a stable business key, row_current_ind / row_end_ts, validity starts at created_at,
--     exactly one current row per key (partial unique index).
--   * append-only tables reject UPDATE/DELETE; immutable version tables reject changes of config/version.


-- ---------------------------------------------------------------- rule enforcement helpers
CREATE FUNCTION precog_reject_modification() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;

-- Immutable version rows: name/version/config columns listed in TG_ARGV may never change.
CREATE FUNCTION precog_reject_version_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    col text;
    old_v jsonb := to_jsonb(OLD);
    new_v jsonb := to_jsonb(NEW);
BEGIN
    FOREACH col IN ARRAY TG_ARGV LOOP
        IF old_v -> col IS DISTINCT FROM new_v -> col THEN
            RAISE EXCEPTION 'immutable version: %.% cannot be changed (create a new version instead)', TG_TABLE_NAME, col
                USING ERRCODE = 'restrict_violation';
        END IF;
    END LOOP;
    RETURN NEW;
END;
$$;

CREATE FUNCTION precog_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

-- ---------------------------------------------------------------- hierarchy
CREATE TABLE platforms (
    platform_id    VARCHAR(50) PRIMARY KEY,
    platform_type  VARCHAR(20) NOT NULL CHECK (platform_type IN ('trading', 'data_source', 'hybrid')),
    display_name   VARCHAR(100) NOT NULL,
    base_url       TEXT,
    websocket_url  TEXT,
    api_version    VARCHAR(20),
    auth_method    VARCHAR(20) CHECK (auth_method IN ('rsa_pss', 'api_key', 'oauth', 'metamask', 'none')),
    fees_structure JSONB,
    status         VARCHAR(20) NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive', 'maintenance')),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE series (
    series_id      VARCHAR(100) PRIMARY KEY,
    platform_id    VARCHAR(50) NOT NULL REFERENCES platforms (platform_id) ON DELETE CASCADE,
    external_id    VARCHAR(100) NOT NULL,
    category       VARCHAR(30) NOT NULL CHECK (category IN ('sports', 'politics', 'entertainment', 'economics', 'weather', 'other')),
    subcategory    VARCHAR(30),
    title          TEXT NOT NULL,
    frequency      VARCHAR(20) CHECK (frequency IN ('single', 'recurring', 'continuous')),
    fee_type       VARCHAR(40),
    fee_multiplier NUMERIC(10, 4) CHECK (fee_multiplier IS NULL OR fee_multiplier >= 0),
    metadata       JSONB,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_series_platform ON series (platform_id);
CREATE INDEX idx_series_category ON series (category, subcategory);

CREATE TABLE events (
    event_id     VARCHAR(100) PRIMARY KEY,
    platform_id  VARCHAR(50) NOT NULL REFERENCES platforms (platform_id) ON DELETE CASCADE,
    series_id    VARCHAR(100) REFERENCES series (series_id) ON DELETE SET NULL,
    external_id  VARCHAR(100) NOT NULL,
    category     VARCHAR(30) NOT NULL,
    subcategory  VARCHAR(30),
    title        TEXT NOT NULL,
    description  TEXT,
    start_time   TIMESTAMPTZ,
    end_time     TIMESTAMPTZ,
    status       VARCHAR(20) NOT NULL DEFAULT 'scheduled'
                 CHECK (status IN ('scheduled', 'live', 'final', 'cancelled', 'postponed')),
    result       JSONB,
    metadata     JSONB,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (end_time IS NULL OR start_time IS NULL OR end_time >= start_time)
);
CREATE INDEX idx_events_platform ON events (platform_id);
CREATE INDEX idx_events_series ON events (series_id);
CREATE INDEX idx_events_status ON events (status);
CREATE INDEX idx_events_start ON events (start_time);

-- markets: SCD2. market_id is the stable business key (the venue ticker); child rows point at it and,
-- where the exact version matters, at markets.id.
CREATE TABLE markets (
    id                       BIGSERIAL PRIMARY KEY,
    market_id                VARCHAR(150) NOT NULL,
    platform_id              VARCHAR(50) NOT NULL REFERENCES platforms (platform_id) ON DELETE CASCADE,
    event_id                 VARCHAR(100) REFERENCES events (event_id) ON DELETE CASCADE,
    external_id              VARCHAR(150) NOT NULL,
    ticker                   VARCHAR(150) NOT NULL,
    title                    TEXT NOT NULL,
    subtitle                 TEXT,
    market_type              VARCHAR(20) NOT NULL DEFAULT 'binary' CHECK (market_type IN ('binary', 'categorical', 'scalar')),
    yes_bid                  NUMERIC(10, 4) CHECK (yes_bid BETWEEN 0 AND 1),
    yes_ask                  NUMERIC(10, 4) CHECK (yes_ask BETWEEN 0 AND 1),
    no_bid                   NUMERIC(10, 4) CHECK (no_bid BETWEEN 0 AND 1),
    no_ask                   NUMERIC(10, 4) CHECK (no_ask BETWEEN 0 AND 1),
    last_price               NUMERIC(10, 4) CHECK (last_price BETWEEN 0 AND 1),
    yes_price                NUMERIC(10, 4) CHECK (yes_price BETWEEN 0 AND 1),  -- derived convenience (mid or last)
    no_price                 NUMERIC(10, 4) CHECK (no_price BETWEEN 0 AND 1),
    spread                   NUMERIC(10, 4) CHECK (spread BETWEEN 0 AND 1),
    volume                   BIGINT CHECK (volume >= 0),
    volume_24h               BIGINT CHECK (volume_24h >= 0),
    open_interest            BIGINT CHECK (open_interest >= 0),
    liquidity                NUMERIC(14, 4) CHECK (liquidity >= 0),
    tick_size                NUMERIC(10, 4) NOT NULL DEFAULT 0.01 CHECK (tick_size > 0 AND tick_size <= 1),
    notional_value           NUMERIC(10, 4) NOT NULL DEFAULT 1.0000,
    open_time                TIMESTAMPTZ,
    close_time               TIMESTAMPTZ,
    expiration_time          TIMESTAMPTZ,
    latest_expiration_time   TIMESTAMPTZ,
    can_close_early          BOOLEAN,
    status                   VARCHAR(20) NOT NULL CHECK (status IN ('unopened', 'open', 'closed', 'settled', 'halted')),
    venue_status             VARCHAR(30),
    result                   VARCHAR(10) CHECK (result IS NULL OR result IN ('yes', 'no', 'void', 'scalar')),
    settlement_value         NUMERIC(10, 4) CHECK (settlement_value BETWEEN 0 AND 1),
    rules_primary            TEXT,
    metadata                 JSONB,
    created_at               TIMESTAMPTZ NOT NULL DEFAULT now(),
    row_current_ind          BOOLEAN NOT NULL DEFAULT TRUE,
    row_end_ts               TIMESTAMPTZ,
    CHECK (row_end_ts IS NULL OR row_end_ts >= created_at),
    CHECK (row_current_ind = (row_end_ts IS NULL))
);
CREATE UNIQUE INDEX idx_markets_unique_current ON markets (market_id) WHERE row_current_ind;
CREATE INDEX idx_markets_history ON markets (market_id, created_at);
CREATE INDEX idx_markets_event ON markets (event_id);
CREATE INDEX idx_markets_status ON markets (status) WHERE row_current_ind;
CREATE INDEX idx_markets_row_end ON markets (row_end_ts) WHERE row_end_ts IS NOT NULL;

-- ---------------------------------------------------------------- teams and live data
CREATE TABLE teams (
    team_id            SERIAL PRIMARY KEY,
    team_code          VARCHAR(10) NOT NULL,
    team_name          VARCHAR(100) NOT NULL,
    sport              VARCHAR(20) NOT NULL CHECK (sport IN ('nfl', 'ncaaf', 'nba', 'ncaab', 'mlb', 'nhl', 'soccer', 'tennis', 'ufc')),
    espn_team_id       VARCHAR(20),
    kalshi_team_id     VARCHAR(50),
    current_elo_rating NUMERIC(10, 2) CHECK (current_elo_rating IS NULL OR current_elo_rating BETWEEN 0 AND 3000),
    conference         VARCHAR(50),
    division           VARCHAR(50),
    metadata           JSONB,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (sport, team_code)
);
CREATE INDEX idx_teams_code ON teams (team_code);
CREATE INDEX idx_teams_rating ON teams (current_elo_rating);
CREATE INDEX idx_teams_espn ON teams (espn_team_id) WHERE espn_team_id IS NOT NULL;
CREATE INDEX idx_teams_kalshi ON teams (kalshi_team_id) WHERE kalshi_team_id IS NOT NULL;
CREATE TRIGGER teams_touch BEFORE UPDATE ON teams FOR EACH ROW EXECUTE FUNCTION precog_touch_updated_at();

-- game_states: SCD2, business key (sport, external_game_id).
CREATE TABLE game_states (
    id                BIGSERIAL PRIMARY KEY,
    external_game_id  VARCHAR(50) NOT NULL,
    sport             VARCHAR(20) NOT NULL CHECK (sport IN ('nfl', 'ncaaf', 'nba', 'ncaab', 'mlb', 'nhl', 'soccer', 'tennis', 'ufc')),
    event_id          VARCHAR(100) REFERENCES events (event_id) ON DELETE SET NULL,
    home_team         VARCHAR(10),
    away_team         VARCHAR(10),
    home_score        INT NOT NULL DEFAULT 0 CHECK (home_score >= 0),
    away_score        INT NOT NULL DEFAULT 0 CHECK (away_score >= 0),
    period            INT CHECK (period >= 0),
    period_label      VARCHAR(20),
    clock_seconds     INT CHECK (clock_seconds >= 0),
    time_remaining    VARCHAR(20),
    possession        VARCHAR(4) CHECK (possession IS NULL OR possession IN ('home', 'away')),
    status            VARCHAR(20) NOT NULL CHECK (status IN ('scheduled', 'pregame', 'live', 'halftime', 'final', 'cancelled', 'postponed')),
    start_time        TIMESTAMPTZ,
    sport_metadata    JSONB,
    source_updated_at TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    row_current_ind   BOOLEAN NOT NULL DEFAULT TRUE,
    row_end_ts        TIMESTAMPTZ,
    CHECK (row_end_ts IS NULL OR row_end_ts >= created_at),
    CHECK (row_current_ind = (row_end_ts IS NULL))
);
CREATE UNIQUE INDEX idx_game_states_unique_current ON game_states (sport, external_game_id) WHERE row_current_ind;
CREATE INDEX idx_game_states_history ON game_states (sport, external_game_id, created_at);
CREATE INDEX idx_game_states_event ON game_states (event_id);
CREATE INDEX idx_game_states_row_end ON game_states (row_end_ts) WHERE row_end_ts IS NOT NULL;

-- ---------------------------------------------------------------- models and strategies (immutable versions)
CREATE TABLE probability_matrices (
    probability_id            SERIAL PRIMARY KEY,
    category                  VARCHAR(30) NOT NULL,
    subcategory               VARCHAR(30) NOT NULL,
    version                   VARCHAR(20) NOT NULL CHECK (version ~ '^v[0-9]+\.[0-9]+$'),
    state_descriptor          VARCHAR(100) NOT NULL,
    value_bucket              VARCHAR(100) NOT NULL,
    situational_factors       JSONB NOT NULL DEFAULT '{}'::jsonb,
    win_probability           NUMERIC(10, 4) NOT NULL CHECK (win_probability BETWEEN 0 AND 1),
    confidence_interval_lower NUMERIC(10, 4) CHECK (confidence_interval_lower BETWEEN 0 AND 1),
    confidence_interval_upper NUMERIC(10, 4) CHECK (confidence_interval_upper BETWEEN 0 AND 1),
    sample_size               INT NOT NULL DEFAULT 0 CHECK (sample_size >= 0),
    source                    VARCHAR(50),
    methodology               TEXT,
    matrix_name               VARCHAR(100),
    description               TEXT,
    created_at                TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at                TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (confidence_interval_lower IS NULL OR confidence_interval_upper IS NULL
           OR confidence_interval_lower <= confidence_interval_upper)
);
CREATE INDEX idx_probability_matrices_lookup
    ON probability_matrices (category, subcategory, version, state_descriptor, value_bucket);
CREATE INDEX idx_probability_matrices_name ON probability_matrices (matrix_name);

CREATE TABLE probability_models (
    model_id               SERIAL PRIMARY KEY,
    model_name             VARCHAR(100) NOT NULL,
    model_version          VARCHAR(20) NOT NULL CHECK (model_version ~ '^v[0-9]+\.[0-9]+$'),
    model_type             VARCHAR(20) NOT NULL CHECK (model_type IN ('elo', 'regression', 'ensemble', 'ml', 'historical', 'fixed', 'market')),
    category               VARCHAR(30) NOT NULL DEFAULT 'sports',
    subcategory            VARCHAR(30),
    sport                  VARCHAR(20),
    config                 JSONB NOT NULL,
    config_hash            VARCHAR(64),
    artifact_path          TEXT,
    artifact_sha256        VARCHAR(64),
    description            TEXT,
    status                 VARCHAR(20) NOT NULL DEFAULT 'draft'
                           CHECK (status IN ('draft', 'training', 'validating', 'testing', 'active', 'deprecated')),
    training_start_date    DATE,
    training_end_date      DATE,
    training_sample_size   INT CHECK (training_sample_size IS NULL OR training_sample_size >= 0),
    validation_accuracy    NUMERIC(10, 4),
    validation_calibration NUMERIC(10, 4),
    validation_brier       NUMERIC(10, 6),
    validation_sample_size INT,
    activated_at           TIMESTAMPTZ,
    deactivated_at         TIMESTAMPTZ,
    created_by             VARCHAR(100),
    notes                  TEXT,
    created_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (model_name, model_version),
    CHECK (deactivated_at IS NULL OR activated_at IS NULL OR deactivated_at >= activated_at)
);
CREATE INDEX idx_probability_models_name ON probability_models (model_name);
CREATE INDEX idx_probability_models_status ON probability_models (status);
CREATE INDEX idx_probability_models_active ON probability_models (model_name) WHERE status = 'active';
CREATE TRIGGER probability_models_immutable BEFORE UPDATE ON probability_models FOR EACH ROW
    EXECUTE FUNCTION precog_reject_version_change('model_name', 'model_version', 'model_type', 'config', 'config_hash',
                                                  'artifact_sha256');
CREATE TRIGGER probability_models_touch BEFORE UPDATE ON probability_models FOR EACH ROW
    EXECUTE FUNCTION precog_touch_updated_at();

CREATE TABLE strategies (
    strategy_id        SERIAL PRIMARY KEY,
    strategy_name      VARCHAR(100) NOT NULL,
    strategy_version   VARCHAR(20) NOT NULL CHECK (strategy_version ~ '^v[0-9]+\.[0-9]+$'),
    strategy_type      VARCHAR(20) NOT NULL DEFAULT 'entry' CHECK (strategy_type IN ('entry', 'exit', 'sizing', 'hedging')),
    platform_id        VARCHAR(50) REFERENCES platforms (platform_id) ON DELETE SET NULL,
    category           VARCHAR(30) NOT NULL DEFAULT 'sports',
    subcategory        VARCHAR(30),
    sport              VARCHAR(20),
    config             JSONB NOT NULL,
    config_hash        VARCHAR(64),
    description        TEXT,
    status             VARCHAR(20) NOT NULL DEFAULT 'draft'
                       CHECK (status IN ('draft', 'testing', 'active', 'inactive', 'deprecated')),
    paper_roi          NUMERIC(10, 4),
    live_roi           NUMERIC(10, 4),
    paper_trades_count INT NOT NULL DEFAULT 0 CHECK (paper_trades_count >= 0),
    live_trades_count  INT NOT NULL DEFAULT 0 CHECK (live_trades_count >= 0),
    activated_at       TIMESTAMPTZ,
    deactivated_at     TIMESTAMPTZ,
    created_by         VARCHAR(100),
    notes              TEXT,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (strategy_name, strategy_version)
);
CREATE INDEX idx_strategies_status ON strategies (status);
CREATE TRIGGER strategies_immutable BEFORE UPDATE ON strategies FOR EACH ROW
    EXECUTE FUNCTION precog_reject_version_change('strategy_name', 'strategy_version', 'strategy_type', 'config', 'config_hash');
CREATE TRIGGER strategies_touch BEFORE UPDATE ON strategies FOR EACH ROW EXECUTE FUNCTION precog_touch_updated_at();

CREATE TABLE method_templates (
    template_id          SERIAL PRIMARY KEY,
    template_name        VARCHAR(100) NOT NULL UNIQUE,
    description          TEXT,
    category             VARCHAR(30) NOT NULL DEFAULT 'sports',
    position_mgmt_config JSONB NOT NULL,
    risk_config          JSONB NOT NULL,
    execution_config     JSONB NOT NULL,
    sport_config         JSONB,
    created_by           VARCHAR(100),
    is_public            BOOLEAN NOT NULL DEFAULT TRUE,
    usage_count          INT NOT NULL DEFAULT 0 CHECK (usage_count >= 0),
    notes                TEXT,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE methods (
    method_id             SERIAL PRIMARY KEY,
    method_name           VARCHAR(100) NOT NULL,
    method_version        VARCHAR(20) NOT NULL CHECK (method_version ~ '^v[0-9]+\.[0-9]+$'),
    strategy_id           INT NOT NULL REFERENCES strategies (strategy_id),
    model_id              INT NOT NULL REFERENCES probability_models (model_id),
    template_id           INT REFERENCES method_templates (template_id) ON DELETE SET NULL,
    position_mgmt_config  JSONB NOT NULL,
    risk_config           JSONB NOT NULL,
    execution_config      JSONB NOT NULL,
    sport_config          JSONB NOT NULL,
    config_hash           VARCHAR(64) NOT NULL,
    status                VARCHAR(20) NOT NULL DEFAULT 'draft'
                          CHECK (status IN ('draft', 'testing', 'active', 'inactive', 'deprecated')),
    capital_share         NUMERIC(6, 4) CHECK (capital_share IS NULL OR capital_share BETWEEN 0 AND 1),
    activated_at          TIMESTAMPTZ,
    deactivated_at        TIMESTAMPTZ,
    paper_trades_count    INT NOT NULL DEFAULT 0 CHECK (paper_trades_count >= 0),
    live_trades_count     INT NOT NULL DEFAULT 0 CHECK (live_trades_count >= 0),
    paper_roi             NUMERIC(10, 4),
    live_roi              NUMERIC(10, 4),
    paper_sharpe          NUMERIC(10, 4),
    live_sharpe           NUMERIC(10, 4),
    sharpe_ratio          NUMERIC(10, 4),
    paper_win_rate        NUMERIC(6, 4),
    live_win_rate         NUMERIC(6, 4),
    win_rate              NUMERIC(6, 4),
    total_trades          INT NOT NULL DEFAULT 0 CHECK (total_trades >= 0),
    description           TEXT,
    notes                 TEXT,
    created_by            VARCHAR(100),
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (method_name, method_version),
    CHECK (deactivated_at IS NULL OR activated_at IS NULL OR deactivated_at >= activated_at)
);
CREATE INDEX idx_methods_name ON methods (method_name);
CREATE INDEX idx_methods_status ON methods (status);
CREATE INDEX idx_methods_active ON methods (method_name) WHERE status = 'active';
CREATE INDEX idx_methods_strategy ON methods (strategy_id);
CREATE INDEX idx_methods_model ON methods (model_id);
CREATE INDEX idx_methods_hash ON methods (config_hash);
CREATE TRIGGER methods_immutable BEFORE UPDATE ON methods FOR EACH ROW
    EXECUTE FUNCTION precog_reject_version_change('method_name', 'method_version', 'strategy_id', 'model_id',
        'position_mgmt_config', 'risk_config', 'execution_config', 'sport_config', 'config_hash');
CREATE TRIGGER methods_touch BEFORE UPDATE ON methods FOR EACH ROW EXECUTE FUNCTION precog_touch_updated_at();

-- ---------------------------------------------------------------- trading
-- edges: SCD2, business key edge_key = market|side|strategy|model|method.
CREATE TABLE edges (
    id                         BIGSERIAL PRIMARY KEY,
    edge_key                   VARCHAR(300) NOT NULL,
    market_id                  VARCHAR(150) NOT NULL,
    market_version_id          BIGINT REFERENCES markets (id) ON DELETE SET NULL,
    side                       VARCHAR(3) NOT NULL CHECK (side IN ('yes', 'no')),
    probability_matrix_id      INT REFERENCES probability_matrices (probability_id) ON DELETE SET NULL,
    strategy_id                INT REFERENCES strategies (strategy_id) ON DELETE SET NULL,
    model_id                   INT REFERENCES probability_models (model_id) ON DELETE SET NULL,
    method_id                  INT REFERENCES methods (method_id) ON DELETE SET NULL,
    expected_value             NUMERIC(10, 4) NOT NULL CHECK (expected_value BETWEEN -1 AND 1),
    ev_pct                     NUMERIC(12, 4),
    true_win_probability       NUMERIC(10, 4) NOT NULL CHECK (true_win_probability BETWEEN 0 AND 1),
    market_implied_probability NUMERIC(10, 4) NOT NULL CHECK (market_implied_probability BETWEEN 0 AND 1),
    market_price               NUMERIC(10, 4) NOT NULL CHECK (market_price BETWEEN 0 AND 1),
    fee_per_contract           NUMERIC(10, 4) CHECK (fee_per_contract >= 0),
    slippage                   NUMERIC(10, 4) CHECK (slippage >= 0),
    confidence_level           VARCHAR(10) CHECK (confidence_level IN ('high', 'medium', 'low')),
    confidence_metrics         JSONB,
    recommended_action         VARCHAR(20) CHECK (recommended_action IN ('auto_execute', 'alert', 'ignore')),
    calculation_run_id         UUID NOT NULL,
    created_at                 TIMESTAMPTZ NOT NULL DEFAULT now(),
    row_current_ind            BOOLEAN NOT NULL DEFAULT TRUE,
    row_end_ts                 TIMESTAMPTZ,
    CHECK (row_end_ts IS NULL OR row_end_ts >= created_at),
    CHECK (row_current_ind = (row_end_ts IS NULL))
);
CREATE UNIQUE INDEX idx_edges_unique_current ON edges (edge_key) WHERE row_current_ind;
CREATE INDEX idx_edges_market ON edges (market_id);
CREATE INDEX idx_edges_strategy ON edges (strategy_id);
CREATE INDEX idx_edges_model ON edges (model_id);
CREATE INDEX idx_edges_method ON edges (method_id);
CREATE INDEX idx_edges_ev_current ON edges (expected_value) WHERE row_current_ind;
CREATE INDEX idx_edges_run ON edges (calculation_run_id);
CREATE INDEX idx_edges_row_end ON edges (row_end_ts) WHERE row_end_ts IS NOT NULL;

CREATE SEQUENCE position_id_seq;

-- positions: SCD2 with a stable identity (position_id) across versions; trades and exits point at it.
CREATE TABLE positions (
    id                   BIGSERIAL PRIMARY KEY,
    position_id          BIGINT NOT NULL,
    market_id            VARCHAR(150) NOT NULL,
    market_version_id    BIGINT REFERENCES markets (id) ON DELETE SET NULL,
    platform_id          VARCHAR(50) NOT NULL REFERENCES platforms (platform_id) ON DELETE CASCADE,
    event_id             VARCHAR(100),
    sport                VARCHAR(20),
    side                 VARCHAR(5) NOT NULL CHECK (lower(side) IN ('yes', 'no', 'long', 'short')),
    mode                 VARCHAR(10) NOT NULL DEFAULT 'paper' CHECK (mode IN ('paper', 'live', 'backtest')),
    entry_price          NUMERIC(10, 4) NOT NULL CHECK (entry_price BETWEEN 0 AND 1),
    quantity             INT NOT NULL CHECK (quantity >= 0),
    initial_quantity     INT NOT NULL CHECK (initial_quantity > 0),
    fees                 NUMERIC(14, 4) NOT NULL DEFAULT 0 CHECK (fees >= 0),
    status               VARCHAR(10) NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed', 'settled')),
    current_price        NUMERIC(10, 4) CHECK (current_price BETWEEN 0 AND 1),
    unrealized_pnl       NUMERIC(14, 4),
    unrealized_pnl_pct   NUMERIC(10, 4),
    realized_pnl         NUMERIC(14, 4) NOT NULL DEFAULT 0,
    target_price         NUMERIC(10, 4) CHECK (target_price BETWEEN 0 AND 1),
    stop_loss_price      NUMERIC(10, 4) CHECK (stop_loss_price BETWEEN 0 AND 1),
    trailing_stop_state  JSONB,
    exit_reason          VARCHAR(30) CHECK (exit_reason IS NULL OR exit_reason IN (
                             'stop_loss', 'circuit_breaker', 'trailing_stop', 'time_based_urgent', 'liquidity_dried_up',
                             'profit_target', 'partial_exit_target', 'early_exit', 'edge_disappeared', 'rebalance',
                             'settlement', 'manual', 'reconciliation')),
    exit_priority        VARCHAR(10) CHECK (exit_priority IS NULL OR exit_priority IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW')),
    exit_price           NUMERIC(10, 4) CHECK (exit_price BETWEEN 0 AND 1),
    strategy_id          INT REFERENCES strategies (strategy_id) ON DELETE SET NULL,
    model_id             INT REFERENCES probability_models (model_id) ON DELETE SET NULL,
    method_id            INT REFERENCES methods (method_id) ON DELETE SET NULL,
    initial_order_id     VARCHAR(100),
    entry_time           TIMESTAMPTZ NOT NULL DEFAULT now(),
    exit_time            TIMESTAMPTZ,
    last_update          TIMESTAMPTZ,
    last_check_time      TIMESTAMPTZ,
    position_metadata    JSONB,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    row_current_ind      BOOLEAN NOT NULL DEFAULT TRUE,
    row_end_ts           TIMESTAMPTZ,
    CHECK (row_end_ts IS NULL OR row_end_ts >= created_at),
    CHECK (row_current_ind = (row_end_ts IS NULL)),
    CHECK (status <> 'open' OR quantity > 0)
);
CREATE UNIQUE INDEX idx_positions_unique_current ON positions (position_id) WHERE row_current_ind;
CREATE INDEX idx_positions_history ON positions (position_id, created_at);
CREATE INDEX idx_positions_market ON positions (market_id);
CREATE INDEX idx_positions_status ON positions (status) WHERE row_current_ind;
CREATE INDEX idx_positions_strategy ON positions (strategy_id);
CREATE INDEX idx_positions_model ON positions (model_id);
CREATE INDEX idx_positions_method ON positions (method_id);
CREATE INDEX idx_positions_last_update ON positions (last_update);
CREATE INDEX idx_positions_targets ON positions (target_price, stop_loss_price) WHERE status = 'open' AND row_current_ind;
CREATE INDEX idx_positions_initial_order ON positions (initial_order_id);
CREATE INDEX idx_positions_row_end ON positions (row_end_ts) WHERE row_end_ts IS NOT NULL;
CREATE INDEX idx_positions_trailing_active ON positions ((trailing_stop_state ->> 'active')) WHERE row_current_ind;

CREATE TABLE trades (
    trade_id                BIGSERIAL PRIMARY KEY,
    market_id               VARCHAR(150) NOT NULL,
    market_version_id       BIGINT REFERENCES markets (id) ON DELETE SET NULL,
    platform_id             VARCHAR(50) NOT NULL REFERENCES platforms (platform_id) ON DELETE CASCADE,
    position_id             BIGINT,
    edge_id                 BIGINT REFERENCES edges (id) ON DELETE SET NULL,
    strategy_id             INT REFERENCES strategies (strategy_id) ON DELETE SET NULL,
    model_id                INT REFERENCES probability_models (model_id) ON DELETE SET NULL,
    method_id               INT REFERENCES methods (method_id) ON DELETE SET NULL,
    order_id                VARCHAR(100),
    client_order_id         VARCHAR(64),
    fill_id                 VARCHAR(100),
    side                    VARCHAR(3) NOT NULL CHECK (side IN ('yes', 'no')),
    action                  VARCHAR(4) NOT NULL CHECK (action IN ('buy', 'sell')),
    price                   NUMERIC(10, 4) NOT NULL CHECK (price BETWEEN 0 AND 1),
    quantity                INT NOT NULL CHECK (quantity > 0),
    fees                    NUMERIC(14, 4) NOT NULL DEFAULT 0 CHECK (fees >= 0),
    is_taker                BOOLEAN,
    mode                    VARCHAR(10) NOT NULL DEFAULT 'paper' CHECK (mode IN ('paper', 'live', 'backtest')),
    edge_at_execution       NUMERIC(10, 4),
    confidence_at_execution VARCHAR(10) CHECK (confidence_at_execution IN ('high', 'medium', 'low')),
    order_type              VARCHAR(20) NOT NULL DEFAULT 'limit' CHECK (order_type IN ('market', 'limit', 'stop', 'stop_limit')),
    execution_time          TIMESTAMPTZ NOT NULL DEFAULT now(),
    trade_metadata          JSONB,
    created_at              TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX idx_trades_fill ON trades (platform_id, fill_id) WHERE fill_id IS NOT NULL;
CREATE INDEX idx_trades_market ON trades (market_id);
CREATE INDEX idx_trades_position ON trades (position_id);
CREATE INDEX idx_trades_edge ON trades (edge_id);
CREATE INDEX idx_trades_strategy ON trades (strategy_id);
CREATE INDEX idx_trades_model ON trades (model_id);
CREATE INDEX idx_trades_method ON trades (method_id);
CREATE INDEX idx_trades_order ON trades (order_id);
CREATE INDEX idx_trades_execution_time ON trades (execution_time);
CREATE INDEX idx_trades_metadata ON trades USING GIN (trade_metadata);
CREATE TRIGGER trades_append_only BEFORE UPDATE OR DELETE ON trades FOR EACH ROW EXECUTE FUNCTION precog_reject_modification();

CREATE TABLE position_exits (
    exit_id                BIGSERIAL PRIMARY KEY,
    position_id            BIGINT NOT NULL,
    exit_condition         VARCHAR(30) NOT NULL CHECK (exit_condition IN (
                               'stop_loss', 'circuit_breaker', 'trailing_stop', 'time_based_urgent', 'liquidity_dried_up',
                               'profit_target', 'partial_exit_target', 'early_exit', 'edge_disappeared', 'rebalance',
                               'settlement', 'manual', 'reconciliation')),
    exit_priority          VARCHAR(10) NOT NULL CHECK (exit_priority IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW')),
    quantity_exited        INT NOT NULL CHECK (quantity_exited > 0),
    exit_price             NUMERIC(10, 4) NOT NULL CHECK (exit_price BETWEEN 0 AND 1),
    realized_pnl           NUMERIC(14, 4),
    unrealized_pnl_at_exit NUMERIC(14, 4),
    exit_trade_id          BIGINT REFERENCES trades (trade_id),
    partial_stage          VARCHAR(50),
    exit_metadata          JSONB,
    created_at             TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_position_exits_position ON position_exits (position_id);
CREATE INDEX idx_position_exits_condition ON position_exits (exit_condition);
CREATE INDEX idx_position_exits_priority ON position_exits (exit_priority);
CREATE INDEX idx_position_exits_created ON position_exits (created_at);
CREATE INDEX idx_position_exits_trade ON position_exits (exit_trade_id);
CREATE TRIGGER position_exits_append_only BEFORE UPDATE OR DELETE ON position_exits FOR EACH ROW
    EXECUTE FUNCTION precog_reject_modification();

CREATE TABLE exit_attempts (
    attempt_id       BIGSERIAL PRIMARY KEY,
    position_id      BIGINT NOT NULL,
    exit_condition   VARCHAR(30),
    priority_level   VARCHAR(10) CHECK (priority_level IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW')),
    order_type       VARCHAR(10) NOT NULL CHECK (order_type IN ('market', 'limit')),
    limit_price      NUMERIC(10, 4) CHECK (limit_price BETWEEN 0 AND 1),
    fill_price       NUMERIC(10, 4) CHECK (fill_price BETWEEN 0 AND 1),
    quantity         INT NOT NULL CHECK (quantity > 0),
    filled_quantity  INT NOT NULL DEFAULT 0 CHECK (filled_quantity >= 0),
    attempt_number   INT NOT NULL CHECK (attempt_number > 0),
    timeout_seconds  NUMERIC(10, 3) CHECK (timeout_seconds IS NULL OR timeout_seconds > 0),
    success          BOOLEAN,
    order_id         VARCHAR(100),
    attempt_metadata JSONB,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_exit_attempts_position ON exit_attempts (position_id);
CREATE INDEX idx_exit_attempts_condition ON exit_attempts (exit_condition);
CREATE INDEX idx_exit_attempts_success ON exit_attempts (success);
CREATE INDEX idx_exit_attempts_created ON exit_attempts (created_at);
CREATE INDEX idx_exit_attempts_order ON exit_attempts (order_id);
CREATE TRIGGER exit_attempts_append_only BEFORE UPDATE OR DELETE ON exit_attempts FOR EACH ROW
    EXECUTE FUNCTION precog_reject_modification();

CREATE TABLE settlements (
    settlement_id          BIGSERIAL PRIMARY KEY,
    market_id              VARCHAR(150) NOT NULL,
    market_version_id      BIGINT REFERENCES markets (id) ON DELETE SET NULL,
    platform_id            VARCHAR(50) NOT NULL REFERENCES platforms (platform_id) ON DELETE CASCADE,
    position_id            BIGINT,
    outcome                VARCHAR(10) NOT NULL CHECK (outcome IN ('yes', 'no', 'void', 'scalar')),
    settlement_value       NUMERIC(10, 4) NOT NULL CHECK (settlement_value BETWEEN 0 AND 1),
    side                   VARCHAR(3) CHECK (side IN ('yes', 'no')),
    quantity               INT CHECK (quantity >= 0),
    payout                 NUMERIC(14, 4) NOT NULL CHECK (payout >= 0),
    realized_pnl           NUMERIC(14, 4),
    mode                   VARCHAR(10) NOT NULL DEFAULT 'paper' CHECK (mode IN ('paper', 'live', 'backtest')),
    external_settlement_id VARCHAR(100),
    settlement_timestamp   TIMESTAMPTZ NOT NULL DEFAULT now(),
    api_response           JSONB,
    created_at             TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_settlements_market ON settlements (market_id);
CREATE INDEX idx_settlements_position ON settlements (position_id);
CREATE TRIGGER settlements_append_only BEFORE UPDATE OR DELETE ON settlements FOR EACH ROW
    EXECUTE FUNCTION precog_reject_modification();

-- account_balance: SCD2, business key (platform_id, mode).
CREATE TABLE account_balance (
    id              BIGSERIAL PRIMARY KEY,
    platform_id     VARCHAR(50) NOT NULL REFERENCES platforms (platform_id) ON DELETE CASCADE,
    mode            VARCHAR(10) NOT NULL DEFAULT 'paper' CHECK (mode IN ('paper', 'live', 'backtest')),
    balance         NUMERIC(14, 4) NOT NULL CHECK (balance >= 0),
    portfolio_value NUMERIC(14, 4) CHECK (portfolio_value >= 0),
    currency        VARCHAR(3) NOT NULL DEFAULT 'USD',
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    row_current_ind BOOLEAN NOT NULL DEFAULT TRUE,
    row_end_ts      TIMESTAMPTZ,
    CHECK (row_end_ts IS NULL OR row_end_ts >= created_at),
    CHECK (row_current_ind = (row_end_ts IS NULL))
);
CREATE UNIQUE INDEX idx_account_balance_unique_current ON account_balance (platform_id, mode) WHERE row_current_ind;

-- ---------------------------------------------------------------- system
CREATE TABLE config_overrides (
    override_id    SERIAL PRIMARY KEY,
    config_key     VARCHAR(200) NOT NULL,
    override_value JSONB NOT NULL,
    data_type      VARCHAR(10) NOT NULL CHECK (data_type IN ('float', 'decimal', 'int', 'bool', 'string', 'json')),
    reason         TEXT,
    applied_by     VARCHAR(100),
    applied_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at     TIMESTAMPTZ,
    active         BOOLEAN NOT NULL DEFAULT TRUE,
    deactivated_at TIMESTAMPTZ,
    CHECK (expires_at IS NULL OR expires_at >= applied_at)
);
CREATE INDEX idx_config_overrides_key ON config_overrides (config_key);
CREATE UNIQUE INDEX idx_config_overrides_active ON config_overrides (config_key) WHERE active;

CREATE TABLE circuit_breaker_events (
    event_id          BIGSERIAL PRIMARY KEY,
    breaker_type      VARCHAR(40) NOT NULL CHECK (breaker_type IN (
                          'daily_loss_limit', 'weekly_loss_limit', 'consecutive_losses', 'rapid_loss', 'api_failures',
                          'api_outage', 'data_quality', 'data_stale', 'db_failures', 'edge_anomaly', 'unusual_activity',
                          'position_limit', 'order_rejections', 'min_balance', 'decimal_precision',
                          'immutability_violation', 'trailing_stop_failure', 'reconciliation', 'manual')),
    triggered_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    resolved_at       TIMESTAMPTZ,
    trigger_value     JSONB,
    action            VARCHAR(30),
    auto_reset_at     TIMESTAMPTZ,
    resolution_action VARCHAR(100),
    resolved_by       VARCHAR(100),
    environment       VARCHAR(10),
    notes             TEXT,
    CHECK (resolved_at IS NULL OR resolved_at >= triggered_at)
);
CREATE INDEX idx_circuit_breaker_events_triggered ON circuit_breaker_events (triggered_at);
CREATE INDEX idx_circuit_breaker_events_type ON circuit_breaker_events (breaker_type);
CREATE INDEX idx_circuit_breaker_events_open ON circuit_breaker_events (breaker_type) WHERE resolved_at IS NULL;
-- Breaker events are append-only except for resolving them (resolved_* columns).
CREATE TRIGGER circuit_breaker_events_no_delete BEFORE DELETE ON circuit_breaker_events FOR EACH ROW
    EXECUTE FUNCTION precog_reject_modification();
CREATE TRIGGER circuit_breaker_events_frozen BEFORE UPDATE ON circuit_breaker_events FOR EACH ROW
    EXECUTE FUNCTION precog_reject_version_change('breaker_type', 'triggered_at', 'trigger_value');

CREATE TABLE system_health (
    health_id   BIGSERIAL PRIMARY KEY,
    component   VARCHAR(30) NOT NULL CHECK (component IN (
                    'kalshi_api', 'polymarket_api', 'espn_api', 'database', 'edge_detector', 'trading_engine',
                    'websocket', 'notifier', 'ingest', 'forecast', 'disk', 'config', 'exchange')),
    status      VARCHAR(10) NOT NULL CHECK (status IN ('healthy', 'degraded', 'down')),
    last_check  TIMESTAMPTZ NOT NULL DEFAULT now(),
    details     JSONB,
    alert_sent  BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX idx_system_health_component ON system_health (component, last_check DESC);

CREATE TABLE alerts (
    alert_id              BIGSERIAL PRIMARY KEY,
    alert_uuid            UUID NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    alert_type            VARCHAR(60) NOT NULL,
    severity              VARCHAR(10) NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    category              VARCHAR(20) CHECK (category IS NULL OR category IN ('risk', 'system', 'trading', 'data')),
    component             VARCHAR(60) NOT NULL,
    message               TEXT NOT NULL,
    details               JSONB,
    source_table          VARCHAR(60),
    source_id             BIGINT,
    triggered_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    acknowledged_at       TIMESTAMPTZ,
    acknowledged_by       VARCHAR(100),
    acknowledged_notes    TEXT,
    resolved_at           TIMESTAMPTZ,
    resolved_by           VARCHAR(100),
    resolved_notes        TEXT,
    resolution_action     VARCHAR(20) CHECK (resolution_action IS NULL OR resolution_action IN ('fixed', 'false_positive', 'ignored', 'escalated')),
    notification_sent     BOOLEAN NOT NULL DEFAULT FALSE,
    notification_channels JSONB,
    notification_sent_at  TIMESTAMPTZ,
    notification_attempts INT NOT NULL DEFAULT 0 CHECK (notification_attempts >= 0),
    notification_errors   JSONB,
    fingerprint           VARCHAR(64),
    suppressed            BOOLEAN NOT NULL DEFAULT FALSE,
    duplicate_count       INT NOT NULL DEFAULT 0 CHECK (duplicate_count >= 0),
    last_seen_at          TIMESTAMPTZ,
    environment           VARCHAR(10),
    tags                  JSONB,
    CHECK (acknowledged_at IS NULL OR acknowledged_at >= triggered_at),
    CHECK (resolved_at IS NULL OR resolved_at >= triggered_at)
);
CREATE INDEX idx_alerts_type ON alerts (alert_type);
CREATE INDEX idx_alerts_severity ON alerts (severity);
CREATE INDEX idx_alerts_component ON alerts (component);
CREATE INDEX idx_alerts_triggered ON alerts (triggered_at DESC);
CREATE INDEX idx_alerts_unresolved ON alerts (resolved_at) WHERE resolved_at IS NULL;
CREATE INDEX idx_alerts_fingerprint ON alerts (fingerprint, triggered_at DESC) WHERE fingerprint IS NOT NULL;
CREATE INDEX idx_alerts_environment ON alerts (environment);

CREATE TABLE elo_rating_history (
    history_id       BIGSERIAL PRIMARY KEY,
    team_id          INT NOT NULL REFERENCES teams (team_id) ON DELETE CASCADE,
    event_id         VARCHAR(100) REFERENCES events (event_id) ON DELETE SET NULL,
    model_id         INT REFERENCES probability_models (model_id) ON DELETE SET NULL,
    game_date        DATE,
    rating_before    NUMERIC(10, 2) NOT NULL CHECK (rating_before BETWEEN 0 AND 3000),
    rating_after     NUMERIC(10, 2) NOT NULL CHECK (rating_after BETWEEN 0 AND 3000),
    opponent_team_id INT REFERENCES teams (team_id),
    game_result      VARCHAR(5) NOT NULL CHECK (game_result IN ('win', 'loss', 'tie')),
    k_factor         NUMERIC(10, 2) NOT NULL CHECK (k_factor > 0 AND k_factor <= 100),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_elo_history_team ON elo_rating_history (team_id);
CREATE INDEX idx_elo_history_event ON elo_rating_history (event_id);
CREATE INDEX idx_elo_history_created ON elo_rating_history (created_at);
CREATE INDEX idx_elo_history_opponent ON elo_rating_history (opponent_team_id);
CREATE TRIGGER elo_rating_history_append_only BEFORE UPDATE OR DELETE ON elo_rating_history FOR EACH ROW
    EXECUTE FUNCTION precog_reject_modification();

-- ---------------------------------------------------------------- views (spec 2.4)
CREATE VIEW current_markets AS SELECT * FROM markets WHERE row_current_ind;
CREATE VIEW current_game_states AS SELECT * FROM game_states WHERE row_current_ind;
CREATE VIEW current_edges AS SELECT * FROM edges WHERE row_current_ind;
CREATE VIEW open_positions AS SELECT * FROM positions WHERE row_current_ind AND status = 'open';
CREATE VIEW current_balances AS SELECT * FROM account_balance WHERE row_current_ind;
CREATE VIEW active_strategies AS SELECT * FROM strategies WHERE status = 'active';
CREATE VIEW active_models AS SELECT * FROM probability_models WHERE status = 'active';
CREATE VIEW active_methods AS SELECT * FROM methods WHERE status = 'active';

CREATE VIEW trade_attribution AS
SELECT t.trade_id, t.market_id, t.side, t.action, t.price, t.quantity, t.fees, t.execution_time, t.mode,
       t.edge_at_execution, t.confidence_at_execution,
       s.strategy_id, s.strategy_name, s.strategy_version, s.config AS strategy_config,
       m.model_id, m.model_name, m.model_version, m.config AS model_config
FROM trades t
LEFT JOIN strategies s ON s.strategy_id = t.strategy_id
LEFT JOIN probability_models m ON m.model_id = t.model_id;

CREATE VIEW complete_trade_attribution AS
SELECT t.trade_id, t.market_id, t.position_id, t.side, t.action, t.price, t.quantity, t.fees, t.execution_time,
       t.mode, t.edge_at_execution, t.confidence_at_execution,
       me.method_id, me.method_name, me.method_version, me.config_hash AS method_config_hash,
       s.strategy_id, s.strategy_name, s.strategy_version,
       m.model_id, m.model_name, m.model_version
FROM trades t
LEFT JOIN methods me ON me.method_id = t.method_id
LEFT JOIN strategies s ON s.strategy_id = t.strategy_id
LEFT JOIN probability_models m ON m.model_id = t.model_id;

CREATE VIEW method_performance AS
SELECT me.method_id, me.method_name, me.method_version, me.status,
       count(DISTINCT p.position_id) FILTER (WHERE p.status IN ('closed', 'settled')) AS closed_positions,
       coalesce(sum(p.realized_pnl) FILTER (WHERE p.status IN ('closed', 'settled')), 0) AS realized_pnl,
       count(DISTINCT p.position_id) FILTER (WHERE p.status IN ('closed', 'settled') AND p.realized_pnl > 0) AS winning_positions
FROM methods me
LEFT JOIN positions p ON p.method_id = me.method_id AND p.row_current_ind
GROUP BY me.method_id, me.method_name, me.method_version, me.status;

CREATE VIEW positions_urgent_monitoring AS
SELECT p.*,
       ((p.trailing_stop_state ->> 'active')::boolean IS TRUE
         AND p.current_price IS NOT NULL AND p.current_price > 0
         AND abs(p.current_price - (p.trailing_stop_state ->> 'current_stop_price')::numeric) / p.current_price < 0.02)
       OR coalesce(p.unrealized_pnl_pct, 0) < -0.13 AS is_urgent
FROM positions p
WHERE p.row_current_ind AND p.status = 'open';

CREATE VIEW exit_performance_summary AS
SELECT e.exit_condition, e.exit_priority, count(*) AS exits,
       avg(e.unrealized_pnl_at_exit) AS avg_pnl_at_exit,
       count(DISTINCT e.position_id) AS unique_positions,
       (SELECT avg(n) FROM (SELECT count(*) AS n FROM exit_attempts a
                            WHERE a.exit_condition = e.exit_condition GROUP BY a.position_id) x) AS avg_attempts
FROM position_exits e
GROUP BY e.exit_condition, e.exit_priority;

CREATE VIEW stale_position_alerts AS
SELECT * FROM positions
WHERE row_current_ind AND status = 'open' AND (last_update IS NULL OR last_update < now() - interval '60 seconds');

CREATE VIEW active_trailing_stops AS
SELECT position_id, market_id, side, entry_price, current_price,
       (trailing_stop_state ->> 'peak_price')::numeric AS peak_price,
       (trailing_stop_state ->> 'current_stop_price')::numeric AS current_stop_price,
       (trailing_stop_state ->> 'current_distance')::numeric AS current_distance
FROM positions
WHERE row_current_ind AND status = 'open' AND (trailing_stop_state ->> 'active')::boolean IS TRUE;

-- ---------------------------------------------------------------- seed data (spec 2.5, 8.1)
INSERT INTO platforms (platform_id, platform_type, display_name, base_url, websocket_url, api_version, auth_method,
                       fees_structure, status)
VALUES ('kalshi', 'trading', 'Kalshi', 'https://demo-api.kalshi.co', 'wss://demo-api.kalshi.co/trade-api/ws/v2', 'v2',
        'rsa_pss', '{"taker_rate": "0.07", "maker_rate": "0", "rounding": "ceil_cent"}', 'active'),
       ('local', 'trading', 'Precog local exchange', 'http://127.0.0.1:8765', 'ws://127.0.0.1:8765/trade-api/ws/v2', 'v2',
        'rsa_pss', '{"taker_rate": "0.07", "maker_rate": "0", "rounding": "ceil_cent"}', 'active');

INSERT INTO teams (team_code, team_name, sport, conference, division, current_elo_rating) VALUES
    ('BUF', 'Buffalo Bills', 'nfl', 'AFC', 'East', 1620), ('MIA', 'Miami Dolphins', 'nfl', 'AFC', 'East', 1540),
    ('NYJ', 'New York Jets', 'nfl', 'AFC', 'East', 1460), ('NE', 'New England Patriots', 'nfl', 'AFC', 'East', 1380),
    ('BAL', 'Baltimore Ravens', 'nfl', 'AFC', 'North', 1610), ('CIN', 'Cincinnati Bengals', 'nfl', 'AFC', 'North', 1550),
    ('PIT', 'Pittsburgh Steelers', 'nfl', 'AFC', 'North', 1520), ('CLE', 'Cleveland Browns', 'nfl', 'AFC', 'North', 1440),
    ('HOU', 'Houston Texans', 'nfl', 'AFC', 'South', 1540), ('IND', 'Indianapolis Colts', 'nfl', 'AFC', 'South', 1480),
    ('JAX', 'Jacksonville Jaguars', 'nfl', 'AFC', 'South', 1420), ('TEN', 'Tennessee Titans', 'nfl', 'AFC', 'South', 1400),
    ('KC', 'Kansas City Chiefs', 'nfl', 'AFC', 'West', 1660), ('LAC', 'Los Angeles Chargers', 'nfl', 'AFC', 'West', 1520),
    ('LV', 'Las Vegas Raiders', 'nfl', 'AFC', 'West', 1430), ('DEN', 'Denver Broncos', 'nfl', 'AFC', 'West', 1450),
    ('PHI', 'Philadelphia Eagles', 'nfl', 'NFC', 'East', 1580), ('DAL', 'Dallas Cowboys', 'nfl', 'NFC', 'East', 1550),
    ('WAS', 'Washington Commanders', 'nfl', 'NFC', 'East', 1490), ('NYG', 'New York Giants', 'nfl', 'NFC', 'East', 1400),
    ('DET', 'Detroit Lions', 'nfl', 'NFC', 'North', 1600), ('GB', 'Green Bay Packers', 'nfl', 'NFC', 'North', 1560),
    ('MIN', 'Minnesota Vikings', 'nfl', 'NFC', 'North', 1530), ('CHI', 'Chicago Bears', 'nfl', 'NFC', 'North', 1440),
    ('TB', 'Tampa Bay Buccaneers', 'nfl', 'NFC', 'South', 1520), ('ATL', 'Atlanta Falcons', 'nfl', 'NFC', 'South', 1480),
    ('NO', 'New Orleans Saints', 'nfl', 'NFC', 'South', 1460), ('CAR', 'Carolina Panthers', 'nfl', 'NFC', 'South', 1370),
    ('SF', 'San Francisco 49ers', 'nfl', 'NFC', 'West', 1630), ('LAR', 'Los Angeles Rams', 'nfl', 'NFC', 'West', 1540),
    ('SEA', 'Seattle Seahawks', 'nfl', 'NFC', 'West', 1500), ('ARI', 'Arizona Cardinals', 'nfl', 'NFC', 'West', 1430);

-- Method templates: ADR-021 seeds (spec 8.1 recommends them over the schema V1.7 text).
INSERT INTO method_templates (template_name, description, position_mgmt_config, risk_config, execution_config, sport_config, created_by)
VALUES
('conservative', 'Small Kelly, tight trailing stop, early profit taking',
 '{"trailing_stop": {"enabled": true, "activation_threshold": "0.10", "initial_distance": "0.03", "tightening_rate": "0.01", "floor_distance": "0.02"},
   "profit_targets": {"high_confidence": "0.15", "medium_confidence": "0.15", "low_confidence": "0.15"},
   "stop_loss": {"high_confidence": "-0.10", "medium_confidence": "-0.08", "low_confidence": "-0.06"},
   "partial_exits": {"enabled": true, "stages": [{"name": "first_target", "profit_threshold": "0.15", "exit_percentage": 50},
                                                  {"name": "second_target", "profit_threshold": "0.25", "exit_percentage": 25}]},
   "early_exit": {"edge_threshold": "0.02"}}',
 '{"kelly_fraction": "0.15", "max_position_size_dollars": "500", "max_total_exposure_dollars": "5000",
   "max_correlated_exposure_dollars": "2500", "min_edge_threshold": "0.06", "daily_loss_limit_dollars": "250",
   "circuit_breakers": {"consecutive_losses": 5, "rapid_loss_dollars": "200", "rapid_loss_minutes": 15}}',
 '{"algorithm": "simple_limit", "default_order_type": "limit", "max_slippage_percent": "0.015", "order_timeout_seconds": 30, "partial_fills": true}',
 '{"nfl": {"enabled": true, "kelly_fraction_override": "0.15", "min_volume": 200, "max_spread": "0.06"},
   "ncaaf": {"enabled": true, "kelly_fraction_override": "0.12", "min_volume": 150, "max_spread": "0.06"},
   "nba": {"enabled": true, "kelly_fraction_override": "0.13", "min_volume": 150, "max_spread": "0.08"}}',
 'seed'),
('moderate', 'Balanced defaults',
 '{"trailing_stop": {"enabled": true, "activation_threshold": "0.12", "initial_distance": "0.05", "tightening_rate": "0.01", "floor_distance": "0.02"},
   "profit_targets": {"high_confidence": "0.25", "medium_confidence": "0.20", "low_confidence": "0.15"},
   "stop_loss": {"high_confidence": "-0.15", "medium_confidence": "-0.12", "low_confidence": "-0.08"},
   "partial_exits": {"enabled": true, "stages": [{"name": "first_target", "profit_threshold": "0.15", "exit_percentage": 50},
                                                  {"name": "second_target", "profit_threshold": "0.25", "exit_percentage": 25}]},
   "early_exit": {"edge_threshold": "0.02"}}',
 '{"kelly_fraction": "0.20", "max_position_size_dollars": "750", "max_total_exposure_dollars": "10000",
   "max_correlated_exposure_dollars": "5000", "min_edge_threshold": "0.05", "daily_loss_limit_dollars": "500",
   "circuit_breakers": {"consecutive_losses": 5, "rapid_loss_dollars": "200", "rapid_loss_minutes": 15}}',
 '{"algorithm": "simple_limit", "default_order_type": "limit", "max_slippage_percent": "0.020", "order_timeout_seconds": 30, "partial_fills": true}',
 '{"nfl": {"enabled": true, "kelly_fraction_override": "0.20", "min_volume": 150, "max_spread": "0.08"},
   "ncaaf": {"enabled": true, "kelly_fraction_override": "0.18", "min_volume": 100, "max_spread": "0.08"},
   "nba": {"enabled": true, "kelly_fraction_override": "0.18", "min_volume": 100, "max_spread": "0.10"}}',
 'seed'),
('aggressive', 'Larger Kelly, wide trailing stop, lets winners run',
 '{"trailing_stop": {"enabled": true, "activation_threshold": "0.15", "initial_distance": "0.07", "tightening_rate": "0.01", "floor_distance": "0.03"},
   "profit_targets": {"high_confidence": "0.30", "medium_confidence": "0.25", "low_confidence": "0.20"},
   "stop_loss": {"high_confidence": "-0.20", "medium_confidence": "-0.15", "low_confidence": "-0.10"},
   "partial_exits": {"enabled": true, "stages": [{"name": "first_target", "profit_threshold": "0.20", "exit_percentage": 50},
                                                  {"name": "second_target", "profit_threshold": "0.30", "exit_percentage": 25}]},
   "early_exit": {"edge_threshold": "0.02"}}',
 '{"kelly_fraction": "0.25", "max_position_size_dollars": "1000", "max_total_exposure_dollars": "10000",
   "max_correlated_exposure_dollars": "5000", "min_edge_threshold": "0.05", "daily_loss_limit_dollars": "500",
   "circuit_breakers": {"consecutive_losses": 5, "rapid_loss_dollars": "200", "rapid_loss_minutes": 15}}',
 '{"algorithm": "simple_limit", "default_order_type": "limit", "max_slippage_percent": "0.025", "order_timeout_seconds": 30, "partial_fills": true}',
 '{"nfl": {"enabled": true, "kelly_fraction_override": "0.25", "min_volume": 100, "max_spread": "0.08"},
   "ncaaf": {"enabled": true, "kelly_fraction_override": "0.20", "min_volume": 75, "max_spread": "0.10"},
   "nba": {"enabled": true, "kelly_fraction_override": "0.22", "min_volume": 75, "max_spread": "0.10"}}',
 'seed');
