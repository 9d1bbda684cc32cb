-- Dashboard sessions (PostgreSQL dialect; keep in step with migrations/sqlite).
-- `id` is the SHA-256 of the cookie's secret: a database leak does not hand out sessions.
CREATE TABLE sessions (
    id           TEXT COLLATE "C" PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id),
    workspace_id TEXT NOT NULL,
    csrf_token   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions(user_id);
