-- depends: 0001_schema 0014_spec_constraints
-- REQ-METH-009 names three helper views: active_methods and method_performance (0001) and method_comparison, which
-- no migration created. One row per method version: its bundle (strategy and model name+version, config hash,
-- template), lifecycle, stored metrics, and its closed trading record (paper + live; a backtest's positions replay
-- the method over history and are reported by the backtest), so versions can be set side by side in SQL.
CREATE VIEW method_comparison AS
SELECT me.method_id, me.method_name, me.method_version, me.status, me.config_hash, t.template_name,
       s.strategy_name, s.strategy_version, m.model_name, m.model_version,
       me.capital_share, me.activated_at, me.deactivated_at,
       me.paper_roi, me.live_roi, me.sharpe_ratio, me.win_rate, me.total_trades,
       count(p.position_id) FILTER (WHERE p.mode = 'paper') AS paper_trades,
       count(p.position_id) FILTER (WHERE p.mode = 'live') AS live_trades,
       count(p.position_id) AS closed_trades,
       count(p.position_id) FILTER (WHERE p.realized_pnl > 0) AS winning_trades,
       coalesce(sum(p.realized_pnl), 0) AS realized_pnl
FROM methods me
JOIN strategies s ON s.strategy_id = me.strategy_id
JOIN probability_models m ON m.model_id = me.model_id
LEFT JOIN method_templates t ON t.template_id = me.template_id
LEFT JOIN positions p ON p.method_id = me.method_id AND p.row_current_ind AND p.status IN ('closed', 'settled')
                     AND p.mode IN ('paper', 'live')
GROUP BY me.method_id, t.template_name, s.strategy_name, s.strategy_version, m.model_name, m.model_version;
