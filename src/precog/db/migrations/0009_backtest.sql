-- depends: 0001_schema 0008_execution
-- Backtests (issue 9): stored runs, so `precog report --run ID` re-renders a past run.
--
-- A backtest drives the same engine as live trading; its engine run is kind 'backtest' and every
-- position/trade it writes carries mode = 'backtest', so backtest P&L never mixes with paper or live.

ALTER TABLE engine_runs DROP CONSTRAINT IF EXISTS engine_runs_kind_check;
ALTER TABLE engine_runs ADD CONSTRAINT engine_runs_kind_check
    CHECK (kind IN ('run', 'demo', 'test', 'benchmark', 'backtest'));

CREATE TABLE backtest_runs (
    backtest_id     BIGSERIAL PRIMARY KEY,
    parameters      JSONB NOT NULL,
    data_source     TEXT NOT NULL,
    data_kind       VARCHAR(20) NOT NULL CHECK (data_kind IN ('nfl_history', 'recording')),
    methods         JSONB NOT NULL,
    status          VARCHAR(10) NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'finished', 'failed')),
    error           TEXT,
    started_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at     TIMESTAMPTZ,
    summary         JSONB,
    report_path     TEXT
);

-- One backtest runs the engine several times: one per walk-forward window and A/B lane (a lane is one
-- method trading alone over the identical data, or all methods together).
CREATE TABLE backtest_windows (
    backtest_id     BIGINT NOT NULL REFERENCES backtest_runs (backtest_id) ON DELETE CASCADE,
    lane            INTEGER NOT NULL DEFAULT 0,
    lane_methods    JSONB NOT NULL DEFAULT '[]',
    window_index    INTEGER NOT NULL,
    engine_run_id   BIGINT REFERENCES engine_runs (run_id),
    train_from      DATE,
    train_to        DATE,
    test_from       DATE NOT NULL,
    test_to         DATE NOT NULL,
    summary         JSONB,
    PRIMARY KEY (backtest_id, lane, window_index)
);
