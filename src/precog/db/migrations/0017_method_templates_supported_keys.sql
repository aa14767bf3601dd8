-- depends: 0001_schema 0016_scd2_versions_frozen
-- The shipped method templates carried execution_config.order_timeout_seconds (ADR-021 seeds), which nothing
-- reads: every entry order rests trading.execution.limit_order_timeout_seconds. Method validation now refuses
-- the key (precog.trading.methods UNSUPPORTED_KEYS), so a method created from a template would be refused; the
-- templates lose it. Methods already stored keep their bundle (versions are immutable); the key has no effect
-- there either.
UPDATE method_templates
SET execution_config = execution_config - 'order_timeout_seconds'
WHERE execution_config -> 'order_timeout_seconds' IS NOT NULL;
