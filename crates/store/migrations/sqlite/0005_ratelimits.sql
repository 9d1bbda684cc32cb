-- Named rate limits on keys and on members (SPEC §11.1), as a JSON list
-- `[{"name", "limit", "window_seconds", "auto_apply"}]`, read with the row they belong to:
-- verification loads a key and its owner's membership anyway, so the limits cost no extra
-- query. Their state (how much is spent) is not here: it lives in memory, or in Redis in
-- cluster mode, and is never written per request. Keep in step with the other dialect.
ALTER TABLE api_keys ADD COLUMN ratelimits TEXT NOT NULL DEFAULT '[]';
ALTER TABLE members ADD COLUMN ratelimits TEXT NOT NULL DEFAULT '[]';
