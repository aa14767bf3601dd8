-- depends: 0001_schema
-- Alerts and notifications: dedup links, silences, the durable notification outbox and rate-limit bookkeeping.
--
-- Delivery model: raise_alert writes the alert row and one alert_outbox row per routed channel in ONE
-- transaction. Notifier workers claim due outbox rows with SELECT ... FOR UPDATE SKIP LOCKED, send, and mark
-- the row sent (plus the alert's notification_* columns and the channel's rate-limit events) in the same
-- transaction that holds the claim, so a crash before the commit leaves the row pending for the next worker.

-- ---------------------------------------------------------------- alerts additions
ALTER TABLE alerts
    ADD COLUMN dedup_key        TEXT,
    ADD COLUMN duplicate_of     BIGINT REFERENCES alerts (alert_id),
    ADD COLUMN last_notified_at TIMESTAMPTZ,
    ADD COLUMN renotify_count   INT NOT NULL DEFAULT 0 CHECK (renotify_count >= 0),
    ADD COLUMN silence_id       BIGINT,
    ADD COLUMN inhibited_by     BIGINT REFERENCES alerts (alert_id),
    ADD CONSTRAINT alerts_duplicate_is_suppressed CHECK (duplicate_of IS NULL OR suppressed);

-- The dedup lookup: the newest unsuppressed alert of a fingerprint.
CREATE INDEX idx_alerts_fingerprint_original ON alerts (fingerprint, triggered_at DESC)
    WHERE NOT suppressed AND fingerprint IS NOT NULL;
-- Re-notification scan: unresolved originals of the paging severities.
CREATE INDEX idx_alerts_renotify ON alerts (severity, last_notified_at)
    WHERE resolved_at IS NULL AND NOT suppressed;
-- Inhibition: firing alerts of a source type.
CREATE INDEX idx_alerts_firing_type ON alerts (alert_type, triggered_at DESC)
    WHERE resolved_at IS NULL AND NOT suppressed;

-- ---------------------------------------------------------------- silences
CREATE TABLE alert_silences (
    silence_id        BIGSERIAL PRIMARY KEY,
    match_alert_type  VARCHAR(60),
    match_component   VARCHAR(60),
    match_severity    VARCHAR(10) CHECK (match_severity IS NULL OR match_severity IN ('critical', 'high', 'medium', 'low')),
    starts_at         TIMESTAMPTZ NOT NULL,
    ends_at           TIMESTAMPTZ NOT NULL,
    created_by        VARCHAR(100) NOT NULL,
    comment           TEXT NOT NULL CHECK (length(btrim(comment)) > 0),
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    expired_at        TIMESTAMPTZ,
    expired_by        VARCHAR(100),
    CHECK (ends_at > starts_at),
    CHECK (match_alert_type IS NOT NULL OR match_component IS NOT NULL OR match_severity IS NOT NULL)
);
CREATE INDEX idx_alert_silences_active ON alert_silences (ends_at) WHERE expired_at IS NULL;

ALTER TABLE alerts ADD CONSTRAINT alerts_silence_fk FOREIGN KEY (silence_id) REFERENCES alert_silences (silence_id);

-- ---------------------------------------------------------------- the outbox: one row per alert x channel delivery
CREATE TABLE alert_outbox (
    outbox_id        BIGSERIAL PRIMARY KEY,
    alert_id         BIGINT NOT NULL REFERENCES alerts (alert_id),
    channel          VARCHAR(20) NOT NULL,
    kind             VARCHAR(10) NOT NULL DEFAULT 'initial' CHECK (kind IN ('initial', 'renotify', 'test')),
    status           VARCHAR(15) NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sent', 'failed', 'rate_limited', 'silenced', 'inhibited', 'cancelled')),
    attempts         INT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    last_error       TEXT,
    delivered_to     JSONB,          -- recipients already reached (a retry after a partial failure skips them)
    created_at       TIMESTAMPTZ NOT NULL,
    sent_at          TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ,
    CHECK (status <> 'sent' OR sent_at IS NOT NULL)
);
CREATE INDEX idx_alert_outbox_due ON alert_outbox (channel, next_attempt_at, outbox_id) WHERE status = 'pending';
CREATE INDEX idx_alert_outbox_alert ON alert_outbox (alert_id);

-- ---------------------------------------------------------------- per-channel rate-limit bookkeeping
-- One row per channel, locked (FOR UPDATE) by the worker that checks the limit and sends, so several
-- notifier processes never exceed a limit together.
CREATE TABLE alert_channel_state (
    channel       VARCHAR(20) PRIMARY KEY,
    last_sent_at  TIMESTAMPTZ,
    sent_total    BIGINT NOT NULL DEFAULT 0,
    limited_total BIGINT NOT NULL DEFAULT 0
);

-- One row per successful send, for the sliding hour/day windows (rows older than a day are pruned).
CREATE TABLE alert_rate_events (
    event_id   BIGSERIAL PRIMARY KEY,
    channel    VARCHAR(20) NOT NULL,
    sent_at    TIMESTAMPTZ NOT NULL,
    outbox_id  BIGINT REFERENCES alert_outbox (outbox_id) ON DELETE SET NULL
);
CREATE INDEX idx_alert_rate_events_channel ON alert_rate_events (channel, sent_at);
