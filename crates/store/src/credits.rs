//! Spending credits (SPEC §11.2): exact under any concurrency and on any number of nodes,
//! because the database decides. A charge is one conditional `UPDATE … WHERE remaining >= cost
//! RETURNING remaining` per holder (the key, its owner's membership), all in one transaction:
//! either every holder pays or none does. A refill due is applied first, in the same
//! transaction, by another conditional update keyed on the boundary, so whichever node notices
//! a boundary first refills it, once, and audits it. The charge that spends the last credit
//! writes `usage.exceeded` (audit and webhooks) in the same transaction.

use crate::audit::Log;
use crate::{Actor, Result, SqlStore};
use serde_json::json;

/// Who pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditHolder<'a> {
    Key(&'a str),
    Member {
        workspace_id: &'a str,
        user_id: &'a str,
    },
}

/// One holder's share of a verification.
#[derive(Debug, Clone, Copy)]
pub struct CreditCharge<'a> {
    pub holder: CreditHolder<'a>,
    /// The workspace the holder is in (for the refill's audit event).
    pub workspace_id: &'a str,
    pub cost: i64,
    /// The refill due by now, if the holder has one: the last boundary (unix seconds) and the
    /// balance it sets.
    pub refill: Option<(i64, i64)>,
}

/// What a charge did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreditOutcome {
    /// Every holder paid: their balances after it, in order.
    Charged(Vec<i64>),
    /// Holder `index` had `remaining` < its cost; nothing was charged.
    Exhausted { index: usize, remaining: i64 },
}

impl CreditHolder<'_> {
    /// The table and the condition naming this holder's row (`$1`, `$2` are its ids).
    fn row(&self) -> (&'static str, &'static str) {
        match self {
            CreditHolder::Key(_) => ("api_keys", "id = $1"),
            CreditHolder::Member { .. } => ("members", "workspace_id = $1 AND user_id = $2"),
        }
    }

    /// The row's ids, in placeholder order.
    fn ids(&self) -> [Option<String>; 2] {
        match *self {
            CreditHolder::Key(id) => [Some(id.to_owned()), None],
            CreditHolder::Member {
                workspace_id,
                user_id,
            } => [Some(workspace_id.to_owned()), Some(user_id.to_owned())],
        }
    }

    /// The next free placeholder after the holder's own.
    fn next(&self) -> usize {
        match self {
            CreditHolder::Key(_) => 2,
            CreditHolder::Member { .. } => 3,
        }
    }

    fn audit_target(&self) -> (&'static str, &'static str, String) {
        match *self {
            CreditHolder::Key(id) => ("key.credits_refilled", "key", id.to_owned()),
            CreditHolder::Member { user_id, .. } => {
                ("member.credits_refilled", "user", user_id.to_owned())
            }
        }
    }
}

impl SqlStore {
    /// Charges every holder its cost, or none of them (see the module's doc).
    pub async fn charge_credits(&self, charges: &[CreditCharge<'_>]) -> Result<CreditOutcome> {
        let mut tx = self.begin_write().await?;
        let system = Actor::default();
        let mut log = Log::new(&system);
        let mut balances = Vec::with_capacity(charges.len());
        for (index, c) in charges.iter().enumerate() {
            let (table, row) = c.holder.row();
            let n = c.holder.next();
            if let Some((boundary, amount)) = c.refill {
                let sql = format!(
                    "UPDATE {table} SET credits_remaining = ${n}, credits_refilled_at = ${} \
                     WHERE {row} AND credits_remaining IS NOT NULL \
                     AND (credits_refilled_at IS NULL OR credits_refilled_at < ${})",
                    n + 1,
                    n + 1
                );
                let mut q = sqlx::query(&sql);
                for id in c.holder.ids().into_iter().flatten() {
                    q = q.bind(id);
                }
                let done = q.bind(amount).bind(boundary).execute(&mut *tx).await?;
                if done.rows_affected() == 1 {
                    let (action, target_type, target_id) = c.holder.audit_target();
                    log.event(
                        Some(c.workspace_id),
                        action,
                        target_type,
                        &target_id,
                        json!({"to": amount, "boundary": boundary}),
                    );
                }
            }
            let sql = format!(
                "UPDATE {table} SET credits_remaining = credits_remaining - ${n} \
                 WHERE {row} AND credits_remaining >= ${n} RETURNING credits_remaining"
            );
            let mut q = sqlx::query_scalar(&sql);
            for id in c.holder.ids().into_iter().flatten() {
                q = q.bind(id);
            }
            let left: Option<i64> = q.bind(c.cost).fetch_optional(&mut *tx).await?;
            match left {
                Some(left) => {
                    // The charge that spends the last credit announces it (`usage.exceeded`),
                    // in this transaction: the next verification will be refused, and only one
                    // charge can take a balance to 0, so it is sent once per exhaustion.
                    if left == 0 && c.cost > 0 {
                        let (_, target_type, target_id) = c.holder.audit_target();
                        let holder = match c.holder {
                            CreditHolder::Key(_) => "key",
                            CreditHolder::Member { .. } => "member",
                        };
                        log.event(
                            Some(c.workspace_id),
                            "usage.exceeded",
                            target_type,
                            &target_id,
                            json!({"holder": holder, "remaining": 0}),
                        );
                    }
                    balances.push(left);
                }
                None => {
                    let sql = format!("SELECT credits_remaining FROM {table} WHERE {row}");
                    let mut q = sqlx::query_scalar(&sql);
                    for id in c.holder.ids().into_iter().flatten() {
                        q = q.bind(id);
                    }
                    let remaining: Option<i64> = q.fetch_optional(&mut *tx).await?.flatten();
                    // Dropping the transaction rolls back what was charged before.
                    return Ok(CreditOutcome::Exhausted {
                        index,
                        remaining: remaining.unwrap_or(0),
                    });
                }
            }
        }
        log.write(&mut tx).await?;
        tx.commit().await?;
        Ok(CreditOutcome::Charged(balances))
    }
}
