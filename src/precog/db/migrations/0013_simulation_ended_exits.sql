-- depends: 0001_schema 0012_game_state_neutral_site
-- A simulated world (`precog run --venue local`, `precog demo`) lives only in its process: when the process ends
-- before the world's games do (a --duration, Ctrl-C, a kill), the world's markets never settle. Its open positions
-- are then closed at their last mark with exit reason `simulation_ended` (precog.engine.simulated_runs), so they
-- no longer show as open, in unrealized P&L or in today's P&L forever.
ALTER TABLE positions DROP CONSTRAINT positions_exit_reason_check;
ALTER TABLE positions ADD CONSTRAINT positions_exit_reason_check CHECK (exit_reason IS NULL OR exit_reason IN (
    'stop_loss', 'circuit_breaker', 'trailing_stop', 'time_based_urgent', 'liquidity_dried_up',
    'profit_target', 'partial_exit_target', 'early_exit', 'edge_disappeared', 'rebalance',
    'settlement', 'manual', 'reconciliation', 'simulation_ended'));
ALTER TABLE position_exits DROP CONSTRAINT position_exits_exit_condition_check;
ALTER TABLE position_exits ADD CONSTRAINT position_exits_exit_condition_check CHECK (exit_condition IN (
    'stop_loss', 'circuit_breaker', 'trailing_stop', 'time_based_urgent', 'liquidity_dried_up',
    'profit_target', 'partial_exit_target', 'early_exit', 'edge_disappeared', 'rebalance',
    'settlement', 'manual', 'reconciliation', 'simulation_ended'));
