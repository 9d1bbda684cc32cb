//! Usage buckets (SPEC §11.3): counts added in batches, read back summed per bucket and code.

use crate::query::ListQuery;
use crate::{Result, SqlStore};
use sqlx::Row;

/// A bucket's width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Granularity {
    Minute,
    Hour,
    Day,
}

impl Granularity {
    pub const ALL: [Granularity; 3] = [Granularity::Minute, Granularity::Hour, Granularity::Day];

    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Minute => "minute",
            Granularity::Hour => "hour",
            Granularity::Day => "day",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == s)
    }

    pub fn seconds(self) -> i64 {
        match self {
            Granularity::Minute => 60,
            Granularity::Hour => 3_600,
            Granularity::Day => 86_400,
        }
    }

    /// The start of the bucket `t` (unix seconds) falls in; days are UTC days.
    pub fn start(self, t: i64) -> i64 {
        t - t.rem_euclid(self.seconds())
    }
}

/// Outcomes of one key with one code in one minute, as a node counted them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageCount {
    pub key_id: String,
    pub workspace_id: String,
    pub owner_id: String,
    /// Start of the minute (unix seconds).
    pub minute: i64,
    /// `VALID` or a denial's verify code.
    pub code: &'static str,
    pub count: i64,
    pub credits: i64,
}

/// Whose usage to read: one key, or a workspace's (optionally one owner's there).
#[derive(Debug, Clone, Default)]
pub struct UsageFilter {
    pub key_id: Option<String>,
    pub workspace_id: Option<String>,
    pub owner_id: Option<String>,
}

/// One bucket's count of one code, summed over the filter's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    pub bucket_start: i64,
    pub code: String,
    pub count: i64,
    pub credits: i64,
}

impl SqlStore {
    /// Adds `counts` to their minute, hour and day buckets, in one transaction.
    pub async fn record_usage(&self, counts: &[UsageCount]) -> Result<()> {
        if counts.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for c in counts {
            for g in Granularity::ALL {
                sqlx::query(
                    "INSERT INTO usage_buckets (granularity, bucket_start, key_id, workspace_id, \
                     owner_id, code, count, credits) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (granularity, key_id, bucket_start, code) DO UPDATE SET \
                     count = usage_buckets.count + excluded.count, \
                     credits = usage_buckets.credits + excluded.credits",
                )
                .bind(g.as_str())
                .bind(g.start(c.minute))
                .bind(&c.key_id)
                .bind(&c.workspace_id)
                .bind(&c.owner_id)
                .bind(c.code)
                .bind(c.count)
                .bind(c.credits)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Buckets of `granularity` in `[since, until)`, summed over the filter's keys, by bucket
    /// and code, oldest first.
    pub async fn usage(
        &self,
        f: &UsageFilter,
        granularity: Granularity,
        since: i64,
        until: i64,
    ) -> Result<Vec<UsageRow>> {
        let mut q = ListQuery::new(
            // SUM of a BIGINT is NUMERIC on PostgreSQL: cast back so both backends give i64.
            "SELECT bucket_start, code, CAST(SUM(count) AS BIGINT) AS count, \
             CAST(SUM(credits) AS BIGINT) AS credits \
             FROM usage_buckets",
        );
        q.and("granularity = ?", [granularity.as_str().into()]);
        q.and("bucket_start >= ?", [since.into()]);
        q.and("bucket_start < ?", [until.into()]);
        q.and_if("key_id = ?", f.key_id.clone());
        q.and_if("workspace_id = ?", f.workspace_id.clone());
        q.and_if("owner_id = ?", f.owner_id.clone());
        let (sql, args) = q.finish(" GROUP BY bucket_start, code ORDER BY bucket_start, code");
        let rows = sqlx::query_with(&sql, args).fetch_all(&self.read).await?;
        rows.iter()
            .map(|r| {
                Ok(UsageRow {
                    bucket_start: r.try_get("bucket_start")?,
                    code: r.try_get("code")?,
                    count: r.try_get("count")?,
                    credits: r.try_get("credits")?,
                })
            })
            .collect()
    }

    /// Deletes buckets older than each granularity's cutoff (unix seconds).
    pub async fn prune_usage(&self, cutoffs: &[(Granularity, i64)]) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let mut n = 0;
        for (g, before) in cutoffs {
            n += sqlx::query(
                "DELETE FROM usage_buckets WHERE granularity = $1 AND bucket_start < $2",
            )
            .bind(g.as_str())
            .bind(*before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(n)
    }
}
