-- depends: 0001_schema
-- A suspended game (ESPN STATUS_SUSPENDED: play stopped mid-game, resumed later from the same state) is its own
-- game_states status. It is not 'postponed' (a game that has not started and is rescheduled: read as pre-game)
-- and not 'final'; while suspended, strategies that need a live game do not enter and the models forecast
-- from the stored state.
ALTER TABLE game_states DROP CONSTRAINT game_states_status_check;
ALTER TABLE game_states ADD CONSTRAINT game_states_status_check
    CHECK (status IN ('scheduled', 'pregame', 'live', 'halftime', 'suspended', 'final', 'cancelled', 'postponed'));
