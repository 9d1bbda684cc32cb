-- Usage (SPEC §11.3): verification outcomes counted per key (and so per owner and workspace)
-- in minute, hour and day buckets. Nodes count in memory and add their counts here in
-- batches (an upsert per bucket), so a verification writes nothing itself. Each granularity
-- is written directly rather than rolled up from the one below: the totals agree by
-- construction, and minutes can be pruned early without losing hours or days. Keep in step
-- with the other dialect.
CREATE TABLE usage_buckets (
    granularity  TEXT NOT NULL,
    bucket_start INTEGER NOT NULL,
    key_id       TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    owner_id     TEXT NOT NULL,
    code         TEXT NOT NULL,
    count        INTEGER NOT NULL,
    credits      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (granularity, key_id, bucket_start, code)
);
CREATE INDEX usage_by_workspace ON usage_buckets (workspace_id, granularity, bucket_start);
CREATE INDEX usage_by_owner ON usage_buckets (owner_id, granularity, bucket_start);
