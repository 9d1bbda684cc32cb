//! Rate limits on the verification path (SPEC §11.1): the limits of a key and of its owner's
//! membership, bound once per cache entry to their state, and charged on every verification
//! with the arithmetic of [`latchkey_core::ratelimit`].
//!
//! State lives in a [`Registry`] by limit id (`k:{key_id}:{name}`, `m:{workspace}:{user}:{name}`),
//! not in the cache entry: an edit of the key drops its cache entry, and the next entry must
//! find the same state, or changing a limit would reset what was spent. The registry is read
//! only when an entry is built; the hot path charges the `Arc<Limiter>`s the entry holds, so a
//! check takes no lock and allocates nothing. Entries are forgotten only when no cache entry
//! holds them and they are at rest, which loses nothing: a rested limiter is a fresh one.

use crate::redis_limits::ClusterCharge;
use crate::resolve::Resolved;
use crate::EngineError;
use latchkey_core::credits::Credits;
use latchkey_core::ratelimit::{charge_all, Charge, Charged, Limiter, Named, NamedLimit, Rate};
use latchkey_core::Denial;
use latchkey_proto::denial::Limited;
use latchkey_proto::ratelimit::{Fields, Standing};
use latchkey_store::{ApiKeyRecord, Principal};
use latchkey_store::{CreditCharge, CreditHolder, CreditOutcome};
use smallvec::SmallVec;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Whose limit it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Key,
    /// The owner's, in the key's workspace: shared by all of that user's keys and tokens there.
    Member,
}

/// A limit with the state it is charged on.
pub struct BoundLimit {
    pub name: Arc<str>,
    pub rate: Rate,
    pub auto_apply: bool,
    pub scope: Scope,
    /// Where its state is kept: the registry's key here, the Redis key in cluster mode.
    pub id: Arc<str>,
    limiter: Arc<Limiter>,
}

/// The limits of one credential: its key's, then its owner's. Most keys have none, and then
/// nothing is allocated.
#[derive(Clone, Default)]
pub struct Bound(Option<Arc<[BoundLimit]>>);

impl Bound {
    pub fn iter(&self) -> impl Iterator<Item = &BoundLimit> {
        self.0.iter().flat_map(|l| l.iter())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }
}

/// Limit state by id.
#[derive(Default)]
pub struct Registry {
    map: Mutex<HashMap<Arc<str>, Arc<Limiter>>>,
}

impl Registry {
    /// The limits of `key` and of its owner's membership `principal`, bound to their state.
    pub fn bind(&self, key: &ApiKeyRecord, principal: &Principal) -> Bound {
        if key.ratelimits.is_empty() && principal.ratelimits.is_empty() {
            return Bound(None);
        }
        let mut map = self.map.lock().expect("limits lock");
        let mut bind = |l: &NamedLimit, scope: Scope, id: String| {
            // Stored limits were validated when set; one that no longer is (written by a
            // newer version with other bounds) is skipped rather than failing the key.
            let rate = l.rate().ok()?;
            let id: Arc<str> = id.into();
            let limiter = map.entry(id.clone()).or_default().clone();
            Some(BoundLimit {
                name: l.name.as_str().into(),
                rate,
                auto_apply: l.auto_apply,
                scope,
                id,
                limiter,
            })
        };
        let mut out = Vec::with_capacity(key.ratelimits.len() + principal.ratelimits.len());
        for l in &key.ratelimits {
            out.extend(bind(l, Scope::Key, format!("k:{}:{}", key.id, l.name)));
        }
        for l in &principal.ratelimits {
            let id = format!("m:{}:{}:{}", key.workspace_id, key.owner_id, l.name);
            out.extend(bind(l, Scope::Member, id));
        }
        Bound((!out.is_empty()).then(|| out.into()))
    }

    /// Forgets the state no cache entry holds and that is at rest at `now_ns`.
    pub fn prune(&self, now_ns: u64) {
        self.map
            .lock()
            .expect("limits lock")
            .retain(|_, l| Arc::strong_count(l) > 1 || !l.is_rested(now_ns));
    }
}

/// The limits one request charges, each with its cost.
pub type Plan<'a> = SmallVec<[(&'a BoundLimit, u32); 4]>;

/// What a request charges: every auto-applied limit of its credentials (cost 1, or the cost
/// the request names), and the other limits it names. A limit reached through both halves of
/// a pair (the owner's, which they share) is charged once.
pub fn plan<'a>(credentials: &[&'a Bound], named: &[Named<'_>]) -> Plan<'a> {
    let mut plan = Plan::new();
    for l in credentials.iter().flat_map(|b| b.iter()) {
        if plan
            .iter()
            .any(|(p, _)| Arc::ptr_eq(&p.limiter, &l.limiter))
        {
            continue;
        }
        let cost = match named.iter().find(|n| *n.name == *l.name) {
            Some(n) => n.cost,
            None if l.auto_apply => 1,
            None => continue,
        };
        plan.push((l, cost));
    }
    plan
}

/// One limit's outcome in a request.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: Arc<str>,
    pub scope: Scope,
    pub limit: u32,
    pub window_seconds: u64,
    /// Units left after this request.
    pub remaining: u32,
    /// Nanoseconds until fully rested.
    pub reset_ns: u64,
    /// This limit refused the request.
    pub exceeded: bool,
    /// Refused: nanoseconds until the request's cost would pass.
    pub retry_after_ns: u64,
}

/// One holder's credits in a request (SPEC §11.2).
#[derive(Debug, Clone)]
pub struct CreditEntry {
    pub scope: Scope,
    /// The balance after this request (refused: as it stands).
    pub remaining: i64,
    /// These credits refused the request.
    pub exceeded: bool,
    /// The next refill (unix seconds), if the credits have one.
    pub refills_at: Option<i64>,
}

/// Where a request's limits stand after it was charged (or refused).
#[derive(Debug, Clone, Default)]
pub struct Report {
    // Inline room for the usual request: two limits (say the key's and the member's) and the
    // key's and the member's credits, so it allocates nothing (tests/no_allocation.rs). A
    // report is built on every verification and moved twice on its way out: room for four
    // limits measured 7 ns more per check and about 5 % more per verification, limited or
    // not (docs/performance.md), to spare a request of three or more limits one allocation.
    pub entries: SmallVec<[Entry; 2]>,
    pub credits: SmallVec<[CreditEntry; 2]>,
    /// The credits this request spent (its cost, once charged).
    pub credits_spent: i64,
}

impl Report {
    /// The outcomes of `plan`, charged or refused as one (see [`charge_all`]).
    pub fn of(plan: &Plan<'_>, outcomes: &[Charged]) -> Self {
        Self {
            entries: plan
                .iter()
                .zip(outcomes)
                .map(|((l, _), c)| Entry {
                    name: l.name.clone(),
                    scope: l.scope,
                    limit: l.rate.limit(),
                    window_seconds: l.rate.window_seconds(),
                    remaining: c.state.remaining,
                    reset_ns: c.state.reset_ns,
                    exceeded: !c.allowed,
                    retry_after_ns: c.retry_after_ns,
                })
                .collect(),
            credits: SmallVec::new(),
            credits_spent: 0,
        }
    }

    /// Whether every limit passed and every holder could pay (also when there were none).
    pub fn allowed(&self) -> bool {
        self.refusal().is_none()
    }

    /// What refused a request handed on as refused ([`Refusal::Limited`](crate::Refusal)),
    /// which always names one.
    pub fn denial(&self) -> Denial {
        self.refusal().unwrap_or(Denial::RateLimited)
    }

    /// The 429 of a refused request.
    pub fn limited(&self, now_unix: i64) -> Limited {
        Limited {
            denial: self.denial(),
            retry_after: self.retry_after_seconds(now_unix),
            fields: self.fields(),
        }
    }

    /// What refused the request: a rate limit, else the credits.
    pub fn refusal(&self) -> Option<Denial> {
        if self.entries.iter().any(|e| e.exceeded) {
            Some(Denial::RateLimited)
        } else if self.credits.iter().any(|c| c.exceeded) {
            Some(Denial::UsageExceeded)
        } else {
            None
        }
    }

    /// `Retry-After` of a refusal, at least 1 s: until the last refusing rate limit passes, or
    /// until the refill of the credits that refused. `None` for credits that never refill.
    pub fn retry_after_seconds(&self, now_unix: i64) -> Option<u64> {
        match self.refusal()? {
            Denial::UsageExceeded => self
                .credits
                .iter()
                .filter(|c| c.exceeded)
                .map(|c| {
                    c.refills_at
                        .map(|t| u64::try_from(t - now_unix).unwrap_or(0))
                })
                .max()
                .flatten()
                .map(|s| s.max(1)),
            _ => Some(
                self.entries
                    .iter()
                    .filter(|e| e.exceeded)
                    .map(|e| e.retry_after_ns.div_ceil(1_000_000_000))
                    .max()
                    .unwrap_or(0)
                    .max(1),
            ),
        }
    }

    /// The `RateLimit-Policy` and `RateLimit` fields (none when no limit was charged).
    pub fn fields(&self) -> Option<Fields> {
        let standings: SmallVec<[Standing<'_>; 4]> = self
            .entries
            .iter()
            .map(|e| Standing {
                name: &e.name,
                limit: e.limit,
                window_seconds: e.window_seconds,
                remaining: e.remaining,
                reset_seconds: e.reset_ns.div_ceil(1_000_000_000),
            })
            .collect();
        Fields::of(&standings)
    }
}

/// Charges the credits of `primary` (and the other half of a pair): the key's, each distinct
/// key once, and the owner's membership's, all or none, in the database (see
/// [`SqlStore::charge_credits`](latchkey_store::SqlStore::charge_credits)). Adds where they
/// stand to `report`.
pub async fn charge_credits(
    engine: &crate::Engine,
    primary: &Resolved,
    pair: Option<&Resolved>,
    cost: u32,
    report: &mut Report,
) -> Result<(), EngineError> {
    let now = engine.clock.unix();
    let mut holders: SmallVec<[(CreditCharge<'_>, Scope, Option<i64>); 3]> = SmallVec::new();
    let mut add = |holder, workspace_id, scope, credits: &Option<Credits>| {
        if let Some(c) = credits {
            holders.push((
                CreditCharge {
                    holder,
                    workspace_id,
                    cost: i64::from(cost),
                    refill: c.refill.map(|r| (r.last_boundary(now), r.amount)),
                },
                scope,
                c.refill.map(|r| r.next_boundary(now)),
            ));
        }
    };
    // A pair's key pays too, unless it is the key the token came from.
    let other = pair.filter(|p| p.key.id != primary.key.id);
    for r in std::iter::once(primary).chain(other) {
        add(
            CreditHolder::Key(&r.key.id),
            &r.key.workspace_id,
            Scope::Key,
            &r.key.credits,
        );
    }
    add(
        CreditHolder::Member {
            workspace_id: &primary.key.workspace_id,
            user_id: &primary.key.owner_id,
        },
        &primary.key.workspace_id,
        Scope::Member,
        &primary.principal.credits,
    );
    if holders.is_empty() {
        return Ok(());
    }
    let charges: SmallVec<[CreditCharge<'_>; 3]> = holders.iter().map(|h| h.0).collect();
    match engine.store.charge_credits(&charges).await? {
        CreditOutcome::Charged(balances) => {
            report.credits_spent = i64::from(cost);
            for ((_, scope, refills_at), remaining) in holders.iter().zip(balances) {
                report.credits.push(CreditEntry {
                    scope: *scope,
                    remaining,
                    exceeded: false,
                    refills_at: *refills_at,
                });
            }
        }
        CreditOutcome::Exhausted { index, remaining } => {
            let (_, scope, refills_at) = holders[index];
            report.credits.push(CreditEntry {
                scope,
                remaining,
                exceeded: true,
                refills_at,
            });
        }
    }
    Ok(())
}

/// Whether `primary` (or the other half of a pair) or its owner has credits to charge.
pub fn has_credits(primary: &Resolved, pair: Option<&Resolved>) -> bool {
    primary.key.credits.is_some()
        || primary.principal.credits.is_some()
        || pair.is_some_and(|p| p.key.credits.is_some())
}

/// Charges `plan`: in Redis when the engine has a cluster store that answers, else on this
/// node's state. All pass, or none is charged.
pub async fn charge(engine: &crate::Engine, plan: &Plan<'_>) -> Report {
    if plan.is_empty() {
        return Report::default();
    }
    let Some(cluster) = engine.cluster_limits() else {
        return charge_local(plan, engine.clock.now_ns());
    };
    let charges: SmallVec<[ClusterCharge<'_>; 4]> = plan
        .iter()
        .map(|(l, cost)| ClusterCharge {
            key: &l.id,
            rate: l.rate,
            cost: *cost,
        })
        .collect();
    let outcomes = cluster
        .charge(&charges, || {
            local_outcomes(plan, engine.clock.now_ns()).into_vec()
        })
        .await;
    Report::of(plan, &outcomes)
}

/// Charges `plan` on this node's state at `now_ns`: all pass, or none is charged.
pub fn charge_local(plan: &Plan<'_>, now_ns: u64) -> Report {
    if plan.is_empty() {
        return Report::default();
    }
    Report::of(plan, &local_outcomes(plan, now_ns))
}

fn local_outcomes(plan: &Plan<'_>, now_ns: u64) -> SmallVec<[Charged; 4]> {
    // The usual case, one limit: nothing to make all-or-none, so one charge.
    if let [(l, cost)] = plan.as_slice() {
        let mut out = SmallVec::new();
        out.push(l.limiter.charge(&l.rate, now_ns, *cost));
        return out;
    }
    let charges: SmallVec<[Charge<'_>; 4]> = plan
        .iter()
        .map(|(l, cost)| Charge {
            limiter: &l.limiter,
            rate: l.rate,
            cost: *cost,
        })
        .collect();
    let mut out: SmallVec<[Charged; 4]> = SmallVec::from_elem(
        Charged {
            allowed: true,
            state: latchkey_core::ratelimit::State {
                remaining: 0,
                reset_ns: 0,
            },
            retry_after_ns: 0,
        },
        charges.len(),
    );
    charge_all(&charges, now_ns, &mut out);
    out
}
