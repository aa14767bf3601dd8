-- depends: 0021_elo_rebuilds
-- The lifecycle of strategy, model and method versions (spec 8.1): deprecated is final, and a version that left
-- draft never goes back to it. The registries refuse these moves; the database now refuses them too, so no
-- script or hand-written UPDATE can bring a retired version back into trading or make a traded one editable.
CREATE FUNCTION precog_reject_status_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'deprecated' OR (NEW.status = 'draft' AND OLD.status <> 'draft') THEN
        RAISE EXCEPTION '%: status % -> % is not allowed (deprecated is final; a version never returns to draft)',
            TG_TABLE_NAME, OLD.status, NEW.status USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER methods_status_final BEFORE UPDATE OF status ON methods FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION precog_reject_status_move();
CREATE TRIGGER strategies_status_final BEFORE UPDATE OF status ON strategies FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION precog_reject_status_move();
CREATE TRIGGER probability_models_status_final BEFORE UPDATE OF status ON probability_models FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION precog_reject_status_move();
