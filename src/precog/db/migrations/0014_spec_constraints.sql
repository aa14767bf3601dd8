-- depends: 0001_schema 0008_execution 0013_simulation_ended_exits
-- Guards of spec section 2 that the schema did not enforce yet (audit of 0001-0013 against the spec, clause by clause).
-- Every added CHECK holds for every row the application can have written, so it is validated on upgrade: the exit
-- conditions come from precog.trading.exits.CONDITIONS, win rates are wins / trades, the validation metrics are a
-- share, a Brier score and a calibration error of probabilities, unrealized_pnl_pct is (bid - entry) / entry with
-- bid >= 0, and orders.avg_fill_price has never been written.

-- Exit attempts name one of the exit conditions of position_exits (spec 2.3, 5.6); so do exit orders, whose
-- condition reconciliation copies into exit_attempts.
ALTER TABLE exit_attempts ADD CONSTRAINT exit_attempts_exit_condition_check CHECK (exit_condition IS NULL OR exit_condition IN (
    'stop_loss', 'circuit_breaker', 'trailing_stop', 'time_based_urgent', 'liquidity_dried_up',
    'profit_target', 'partial_exit_target', 'early_exit', 'edge_disappeared', 'rebalance',
    'settlement', 'manual', 'reconciliation', 'simulation_ended'));
ALTER TABLE orders ADD CONSTRAINT orders_exit_condition_check CHECK (exit_condition IS NULL OR exit_condition IN (
    'stop_loss', 'circuit_breaker', 'trailing_stop', 'time_based_urgent', 'liquidity_dried_up',
    'profit_target', 'partial_exit_target', 'early_exit', 'edge_disappeared', 'rebalance',
    'settlement', 'manual', 'reconciliation', 'simulation_ended'));

-- Prices are in [0, 1] (spec 2.1).
ALTER TABLE orders ADD CONSTRAINT orders_avg_fill_price_check CHECK (avg_fill_price BETWEEN 0 AND 1);

-- Rates and probability-scale metrics are in [0, 1] (spec 2.1: win_rate is a DECIMAL(6,4) share).
ALTER TABLE methods
    ADD CONSTRAINT methods_win_rate_check CHECK (win_rate BETWEEN 0 AND 1),
    ADD CONSTRAINT methods_paper_win_rate_check CHECK (paper_win_rate BETWEEN 0 AND 1),
    ADD CONSTRAINT methods_live_win_rate_check CHECK (live_win_rate BETWEEN 0 AND 1);
ALTER TABLE probability_models
    ADD CONSTRAINT probability_models_validation_accuracy_check CHECK (validation_accuracy BETWEEN 0 AND 1),
    ADD CONSTRAINT probability_models_validation_calibration_check CHECK (validation_calibration BETWEEN 0 AND 1),
    ADD CONSTRAINT probability_models_validation_brier_check CHECK (validation_brier BETWEEN 0 AND 1),
    ADD CONSTRAINT probability_models_validation_sample_size_check CHECK (validation_sample_size >= 0);

-- unrealized_pnl_pct = (current - entry) / entry (spec 2.3) with current >= 0: a position cannot lose more than
-- everything it paid.
ALTER TABLE positions ADD CONSTRAINT positions_unrealized_pnl_pct_check CHECK (unrealized_pnl_pct >= -1);

-- A method may be deactivated and, through testing, activated again (precog.trading.methods.TRANSITIONS):
-- activated_at then holds the new activation and deactivated_at the previous deactivation. The 0001 CHECK
-- (deactivated_at >= activated_at) refused that reactivation; the activation window only has to be ordered while
-- the version is not active. Strategies (which may go inactive -> active directly) get the same rule.
ALTER TABLE methods DROP CONSTRAINT methods_check;
ALTER TABLE methods ADD CONSTRAINT methods_activation_window_check
    CHECK (status = 'active' OR deactivated_at IS NULL OR activated_at IS NULL OR deactivated_at >= activated_at);
ALTER TABLE strategies ADD CONSTRAINT strategies_activation_window_check
    CHECK (status = 'active' OR deactivated_at IS NULL OR activated_at IS NULL OR deactivated_at >= activated_at);

-- Immutable versions (spec 2.1): only status, timestamps and performance metrics may change. What a version applies
-- to (category, subcategory, sport) and, for a model, the data it was trained on are part of the version too.
DROP TRIGGER strategies_immutable ON strategies;
CREATE TRIGGER strategies_immutable BEFORE UPDATE ON strategies FOR EACH ROW
    EXECUTE FUNCTION precog_reject_version_change('strategy_name', 'strategy_version', 'strategy_type', 'config', 'config_hash',
                                                  'category', 'subcategory', 'sport');
DROP TRIGGER probability_models_immutable ON probability_models;
CREATE TRIGGER probability_models_immutable BEFORE UPDATE ON probability_models FOR EACH ROW
    EXECUTE FUNCTION precog_reject_version_change('model_name', 'model_version', 'model_type', 'config', 'config_hash',
                                                  'artifact_sha256', 'category', 'subcategory', 'sport',
                                                  'training_start_date', 'training_end_date', 'training_sample_size');

-- Spec 2.3 edges index "probability": `precog forecast matrix build --replace` deletes matrix cells, and each deleted
-- cell makes the ON DELETE SET NULL action look its edges up; without an index that is one scan of all edge history
-- per cell. Partial: edges written today carry no matrix id, so the index costs the edge writer nothing.
CREATE INDEX idx_edges_probability_matrix ON edges (probability_matrix_id) WHERE probability_matrix_id IS NOT NULL;
