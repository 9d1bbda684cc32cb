-- Webhooks (SPEC §12.1). An endpoint's secret must sign, so it cannot be hashed: `secret` is
-- sealed by the server (XChaCha20-Poly1305 under a key derived from the server secret), and so
-- is `previous_secret`, which keeps signing until `previous_expires_at` after a rotation.
-- `events` is a JSON array of filters (`*`, `key.*`, `key.revoked`).
--
-- `webhook_deliveries` is the outbox: one row per event and endpoint, inserted by the audit
-- writer inside the transaction of the change, so a crash loses no event. The worker claims a
-- due row by moving `next_attempt_at` forward (a lease), sends it, and records the outcome.
-- Keep in step with the other dialect.
CREATE TABLE webhook_endpoints (
    id                  TEXT PRIMARY KEY,
    workspace_id        TEXT NOT NULL REFERENCES workspaces(id),
    url                 TEXT NOT NULL,
    description         TEXT NOT NULL DEFAULT '',
    events              TEXT NOT NULL,
    secret              TEXT NOT NULL,
    previous_secret     TEXT,
    previous_expires_at INTEGER,
    enabled             INTEGER NOT NULL DEFAULT 1,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);
CREATE INDEX webhook_endpoints_by_workspace ON webhook_endpoints (workspace_id, id);

CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    event_id         TEXT NOT NULL,
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    event_type       TEXT NOT NULL,
    payload          TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    status           TEXT NOT NULL,
    last_status_code INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, id);

-- `key.expiring` and `key.expired` are sent once per key and notice (`expiring:7`,
-- `expiring:1`, `expired`): the primary key makes a second node's insert, and so its event,
-- a no-op.
CREATE TABLE webhook_key_notices (
    key_id TEXT NOT NULL,
    notice TEXT NOT NULL,
    PRIMARY KEY (key_id, notice)
);
