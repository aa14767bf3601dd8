-- depends: 0013_simulation_ended_exits 0014_spec_constraints
-- Spec 5.11 hedge_strategy: the hedge of a winning position is a partial sale of it (on Kalshi a YES and a NO of
-- one market net out), an exit whose condition is `hedge` (precog.trading.exits.CONDITIONS). The exit reason of
-- positions, position_exits, exit_attempts and exit orders may now name it. Every row written before holds.
ALTER TABLE positions DROP CONSTRAINT positions_exit_reason_check;
ALTER TABLE positions ADD CONSTRAINT positions_exit_reason_check CHECK (exit_reason IS NULL OR exit_reason IN (
    'stop_loss', 'circuit_breaker', 'trailing_stop', 'time_based_urgent', 'liquidity_dried_up',
    'profit_target', 'partial_exit_target', 'hedge', 'early_exit', 'edge_disappeared', 'rebalance',
    'settlement', 'manual', 'reconciliation', 'simulation_ended'));
ALTER TABLE position_exits DROP CONSTRAINT position_exits_exit_condition_check;
ALTER TABLE position_exits ADD CONSTRAINT position_exits_exit_condition_check CHECK (exit_condition IN (
    'stop_loss', 'circuit_breaker', 'trailing_stop', 'time_based_urgent', 'liquidity_dried_up',
    'profit_target', 'partial_exit_target', 'hedge', 'early_exit', 'edge_disappeared', 'rebalance',
    'settlement', 'manual', 'reconciliation', 'simulation_ended'));
ALTER TABLE exit_attempts DROP CONSTRAINT exit_attempts_exit_condition_check;
ALTER TABLE exit_attempts ADD CONSTRAINT exit_attempts_exit_condition_check CHECK (exit_condition IS NULL OR exit_condition IN (
    'stop_loss', 'circuit_breaker', 'trailing_stop', 'time_based_urgent', 'liquidity_dried_up',
    'profit_target', 'partial_exit_target', 'hedge', 'early_exit', 'edge_disappeared', 'rebalance',
    'settlement', 'manual', 'reconciliation', 'simulation_ended'));
ALTER TABLE orders DROP CONSTRAINT orders_exit_condition_check;
ALTER TABLE orders ADD CONSTRAINT orders_exit_condition_check CHECK (exit_condition IS NULL OR exit_condition IN (
    'stop_loss', 'circuit_breaker', 'trailing_stop', 'time_based_urgent', 'liquidity_dried_up',
    'profit_target', 'partial_exit_target', 'hedge', 'early_exit', 'edge_disappeared', 'rebalance',
    'settlement', 'manual', 'reconciliation', 'simulation_ended'));
