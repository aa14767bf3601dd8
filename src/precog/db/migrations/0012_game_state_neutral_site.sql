-- depends: 0001_schema 0011_game_state_suspended
-- A game played at neither team's stadium (ESPN competitions[0].neutralSite: international games, bowls, Super
-- Bowls) is marked on its game state, so live forecasts give the listed home team no home-field advantage.
-- Rows stored before this column existed were never read as neutral: they default to FALSE. A change of site
-- is a material change (a new SCD2 version). current_game_states is re-created to show the new column
-- (a view's SELECT * is expanded when it is created).
ALTER TABLE game_states ADD COLUMN neutral_site BOOLEAN NOT NULL DEFAULT FALSE;
CREATE OR REPLACE VIEW current_game_states AS SELECT * FROM game_states WHERE row_current_ind;
