-- Portal links (SPEC §7): a single-use link, valid minutes, that signs one person into the
-- dashboard for one workspace, made by the provider's server for its signed-in customer.
-- `id` is the SHA-256 of the link's secret; the secret itself is never stored. A link is used
-- by one conditional UPDATE (`used_at IS NULL AND expires_at > now`), so it signs in once
-- however many requests race for it. Keep in step with migrations/postgres.
CREATE TABLE portal_links (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id),
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    return_url   TEXT,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    used_at      INTEGER,
    -- The session it opens ends by then: when the credential that made the link expires.
    session_ends_by INTEGER
);
CREATE INDEX portal_links_by_expiry ON portal_links(expires_at);

-- Where a session opened by a portal link goes back to: the dashboard shows it as a link
-- ("Back to <host>"), never follows it by itself.
ALTER TABLE sessions ADD COLUMN return_url TEXT;
