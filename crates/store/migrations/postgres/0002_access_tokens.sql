-- Access tokens (PostgreSQL dialect; keep in step with migrations/sqlite).

-- Ed25519 keys that sign access tokens. The private half is encrypted under a key derived from
-- the server secret. A retired key no longer signs but stays published while tokens it signed live.
CREATE TABLE signing_keys (
    kid         TEXT COLLATE "C" PRIMARY KEY,
    public_key  TEXT NOT NULL,
    private_key TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT
);

-- Every access token issued, by exchange, OAuth client credentials or as an environment token.
-- `id` is the JWT's `jti`. A token obtained from a key dies with the key.
CREATE TABLE access_tokens (
    id           TEXT COLLATE "C" PRIMARY KEY,
    kind         TEXT NOT NULL,
    name         TEXT,
    kid          TEXT NOT NULL,
    key_id       TEXT COLLATE "C" NOT NULL REFERENCES api_keys(id),
    workspace_id TEXT COLLATE "C" NOT NULL,
    owner_id     TEXT COLLATE "C" NOT NULL,
    environment  TEXT NOT NULL,
    scope        TEXT,
    issued_at    BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    replaced_by  TEXT
);
CREATE INDEX access_tokens_by_key ON access_tokens(key_id);
CREATE INDEX access_tokens_by_owner ON access_tokens(owner_id, id);
CREATE INDEX access_tokens_by_kid ON access_tokens(kid, expires_at);
