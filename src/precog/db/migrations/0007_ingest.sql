-- depends: 0001_schema
-- Ingestion bookkeeping (issue 5): Kalshi game events linked to ESPN games, which market pays on which
-- team, and the live status of each feed (so the trading side can tell real-time data from fallback polling).

-- One Kalshi game event (e.g. KXNFLGAME-25NOV30DENWSH) <-> one ESPN game. Several venue events may point at
-- the same game (winner, spread, total series), so the game is not unique here.
CREATE TABLE game_links (
    event_id          VARCHAR(100) PRIMARY KEY REFERENCES events (event_id) ON DELETE CASCADE,
    sport             VARCHAR(20) NOT NULL,
    external_game_id  VARCHAR(50) NOT NULL,
    game_date         DATE NOT NULL,  -- the US Eastern calendar date of the game (the date in Kalshi's ticker)
    home_team         VARCHAR(10) NOT NULL,
    away_team         VARCHAR(10) NOT NULL,
    match_method      VARCHAR(20) NOT NULL CHECK (match_method IN ('ticker_codes', 'team_names', 'manual')),
    match_score       INT NOT NULL DEFAULT 0 CHECK (match_score >= 0),
    linked_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_game_links_game ON game_links (sport, external_game_id);
CREATE TRIGGER game_links_touch BEFORE UPDATE ON game_links FOR EACH ROW EXECUTE FUNCTION precog_touch_updated_at();

-- Which team a market's YES pays on (markets.market_id is an SCD2 business key, so no FK to markets).
CREATE TABLE game_link_markets (
    market_id   VARCHAR(150) PRIMARY KEY,
    event_id    VARCHAR(100) NOT NULL REFERENCES game_links (event_id) ON DELETE CASCADE,
    side        VARCHAR(4) NOT NULL CHECK (side IN ('home', 'away', 'tie')),
    team_code   VARCHAR(10),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_game_link_markets_event ON game_link_markets (event_id);

-- Live status of each ingestion feed, updated in place by the running ingester.
--   mode: streaming (WebSocket subscribed), polling (REST fallback), down (no data)
CREATE TABLE ingest_feed_status (
    feed               VARCHAR(60) PRIMARY KEY,  -- e.g. kalshi:ws, kalshi:rest, espn:nfl
    platform_id        VARCHAR(50),
    mode               VARCHAR(10) NOT NULL CHECK (mode IN ('streaming', 'polling', 'down')),
    reliable_realtime  BOOLEAN NOT NULL DEFAULT FALSE,
    last_message_at    TIMESTAMPTZ,
    last_success_at    TIMESTAMPTZ,
    messages           BIGINT NOT NULL DEFAULT 0 CHECK (messages >= 0),
    versions_written   BIGINT NOT NULL DEFAULT 0 CHECK (versions_written >= 0),
    quality_issues     BIGINT NOT NULL DEFAULT 0 CHECK (quality_issues >= 0),
    details            JSONB,
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
