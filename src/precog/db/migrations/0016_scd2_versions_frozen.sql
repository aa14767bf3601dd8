-- depends: 0001_schema 0015_method_comparison
-- SCD2 history is the audit trail (what the market, game, edge, position or balance was at any past time): a
-- version once closed never changes, and the current version changes only by being closed
-- (row_current_ind TRUE -> FALSE with its row_end_ts) when a new version is written; a change of content is a new
-- version. The trigger fires only for the refused updates (its WHEN clause), so the SCD2 writer's closing UPDATE
-- pays nothing for it (a plpgsql call per closed row cost ~3-10 us, measured on 3,000-row closes). Not compared:
-- the other columns of a row being closed (the writer's UPDATE sets only the two; comparing whole rows on every
-- close doubled its cost). Referential actions (ON DELETE SET NULL of a purged parent row, e.g. an old market
-- version an edge points to) still clear links in any version: they run inside the parent's trigger
-- (pg_trigger_depth() > 0).
CREATE FUNCTION precog_scd2_version_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT OLD.row_current_ind THEN
        RAISE EXCEPTION 'SCD2 history: % version id % is closed and cannot be changed', TG_TABLE_NAME, OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    RAISE EXCEPTION 'SCD2 history: % version id % cannot be changed in place (write a new version)',
        TG_TABLE_NAME, OLD.id USING ERRCODE = 'restrict_violation';
END;
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['markets', 'game_states', 'edges', 'positions', 'account_balance'] LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE ON %I FOR EACH ROW '
                       'WHEN (pg_trigger_depth() = 0 AND (NOT OLD.row_current_ind OR NEW.row_current_ind)) '
                       'EXECUTE FUNCTION precog_scd2_version_frozen()', t || '_versions_frozen', t);
    END LOOP;
END;
$$;
