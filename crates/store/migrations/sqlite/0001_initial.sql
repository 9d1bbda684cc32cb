-- Latchkey schema, SQLite dialect. Keep in step with migrations/postgres.
-- Times are unix seconds; booleans are 0/1; lists and objects are JSON text.

CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id                TEXT PRIMARY KEY,
    email             TEXT NOT NULL UNIQUE,
    name              TEXT NOT NULL,
    password_hash     TEXT,
    is_instance_admin INTEGER NOT NULL DEFAULT 0,
    active            INTEGER NOT NULL DEFAULT 1,
    created_at        INTEGER NOT NULL,
    deactivated_at    INTEGER
);

CREATE TABLE workspaces (
    id                      TEXT PRIMARY KEY,
    name                    TEXT NOT NULL,
    require_pair            INTEGER NOT NULL DEFAULT 0,
    publishable_permissions TEXT NOT NULL DEFAULT '[]',
    max_key_ttl_seconds     INTEGER,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL
);

CREATE TABLE roles (
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    name         TEXT NOT NULL,
    permissions  TEXT NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, name)
);

CREATE TABLE members (
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    user_id      TEXT NOT NULL REFERENCES users(id),
    role         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX members_by_user ON members(user_id);

CREATE TABLE grants (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    user_id      TEXT NOT NULL REFERENCES users(id),
    permission   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    UNIQUE (workspace_id, user_id, permission)
);

CREATE TABLE api_keys (
    id              TEXT PRIMARY KEY,
    hash            TEXT NOT NULL UNIQUE,
    redacted        TEXT NOT NULL,
    name            TEXT NOT NULL,
    key_type        TEXT NOT NULL,
    environment     TEXT NOT NULL,
    workspace_id    TEXT NOT NULL REFERENCES workspaces(id),
    owner_id        TEXT NOT NULL REFERENCES users(id),
    permissions     TEXT,
    allowed_origins TEXT NOT NULL DEFAULT '[]',
    allowed_ips     TEXT NOT NULL DEFAULT '[]',
    metadata        TEXT NOT NULL DEFAULT '{}',
    enabled         INTEGER NOT NULL DEFAULT 1,
    expires_at      INTEGER,
    revoked_at      INTEGER,
    rolled_to       TEXT,
    created_by      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    last_used_at    INTEGER
);
CREATE INDEX api_keys_by_workspace ON api_keys(workspace_id, id);
CREATE INDEX api_keys_by_owner ON api_keys(owner_id, id);

CREATE TABLE audit_events (
    id                    TEXT PRIMARY KEY,
    at                    INTEGER NOT NULL,
    workspace_id          TEXT,
    action                TEXT NOT NULL,
    actor_user_id         TEXT,
    actor_credential_id   TEXT,
    actor_credential_name TEXT,
    target_type           TEXT NOT NULL,
    target_id             TEXT NOT NULL,
    ip                    TEXT,
    user_agent            TEXT,
    detail                TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_by_workspace ON audit_events(workspace_id, id);

-- Every change that can alter a verification, in commit order; nodes follow it to invalidate caches.
CREATE TABLE changes (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    subject TEXT NOT NULL
);
