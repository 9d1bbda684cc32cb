//! Credits (SPEC §11.2) where they are decided: in the database, by conditional updates. A
//! refill due is applied once per boundary however many charges notice it at once, each
//! refill is audited, and a charge of several holders pays all or none.

use crate::db::{actor, each_backend, owner_and_key};
use latchkey_core::credits::{Credits, Interval, Refill};
use latchkey_store::{
    AuditFilter, CreditCharge, CreditHolder, CreditOutcome, MemberSettings, PageRequest, SqlStore,
};

async fn audited(store: &SqlStore, ws: &str, action: &str) -> usize {
    let filter = AuditFilter {
        workspace_id: Some(ws.to_owned()),
        action: Some(action.to_owned()),
        ..Default::default()
    };
    let page = PageRequest {
        cursor: None,
        limit: 500,
    };
    store.list_audit(&filter, page).await.unwrap().data.len()
}

fn charge<'a>(
    holder: CreditHolder<'a>,
    ws: &'a str,
    refill: Option<(i64, i64)>,
) -> CreditCharge<'a> {
    CreditCharge {
        holder,
        workspace_id: ws,
        cost: 1,
        refill,
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A daily refill to `amount`.
fn daily(amount: i64) -> Refill {
    Refill {
        interval: Interval::Daily,
        amount,
        day: None,
    }
}

fn credits(remaining: i64, refill: Refill) -> Option<Credits> {
    Some(Credits {
        remaining,
        refill: Some(refill),
    })
}

#[tokio::test]
async fn a_refill_due_is_applied_once_per_boundary_even_when_charges_race_for_it() {
    each_backend(|store, _| async move {
        let (_, ws, _, mut new) = owner_and_key(&store).await;
        new.credits = credits(1, daily(3));
        let (key, _) = store.create_key(&new, &actor()).await.unwrap();
        let one = |refill| {
            let (store, id, ws) = (&store, &key.id, &ws);
            async move {
                let charges = [charge(CreditHolder::Key(id), ws, refill)];
                store.charge_credits(&charges).await
            }
        };

        assert_eq!(one(None).await.unwrap(), CreditOutcome::Charged(vec![0]));
        assert_eq!(
            one(None).await.unwrap(),
            CreditOutcome::Exhausted {
                index: 0,
                remaining: 0
            }
        );
        // Setting the credits marked them refilled at the last boundary: that one, or one
        // before it, is no refill.
        let now = unix_now();
        let last = daily(3).last_boundary(now);
        for past in [last, last - 86_400] {
            assert!(matches!(
                one(Some((past, 3))).await.unwrap(),
                CreditOutcome::Exhausted { .. }
            ));
        }
        assert!(matches!(
            one(Some((last, 3))).await.unwrap(),
            CreditOutcome::Exhausted { .. }
        ));
        assert_eq!(audited(&store, &ws, "key.credits_refilled").await, 0);

        // The next boundary: the balance becomes 3, and this charge spends one of it.
        let boundary = daily(3).next_boundary(now);
        assert_eq!(
            one(Some((boundary, 3))).await.unwrap(),
            CreditOutcome::Charged(vec![2])
        );
        assert_eq!(
            one(Some((boundary, 3))).await.unwrap(),
            CreditOutcome::Charged(vec![1]),
            "one refill per boundary"
        );
        assert_eq!(audited(&store, &ws, "key.credits_refilled").await, 1);

        // Forty charges (as forty nodes might) notice the following boundary together: it
        // refills once, so exactly its five credits are spent.
        let later = boundary + 86_400;
        let racing: Vec<_> = (0..40)
            .map(|_| {
                let (store, id, ws) = (store.clone(), key.id.clone(), ws.clone());
                tokio::spawn(async move {
                    store
                        .charge_credits(&[charge(CreditHolder::Key(&id), &ws, Some((later, 5)))])
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut charged = 0;
        for t in racing {
            if let CreditOutcome::Charged(_) = t.await.unwrap() {
                charged += 1;
            }
        }
        assert_eq!(charged, 5);
        assert_eq!(audited(&store, &ws, "key.credits_refilled").await, 2);
        let stored = store.get_key(&key.id).await.unwrap();
        assert_eq!(stored.credits.map(|c| c.remaining), Some(0));
    })
    .await;
}

#[tokio::test]
async fn a_key_and_its_owner_pay_together_or_neither_pays() {
    each_backend(|store, _| async move {
        let (user, ws, _, mut new) = owner_and_key(&store).await;
        new.credits = credits(10, daily(10));
        let (key, _) = store.create_key(&new, &actor()).await.unwrap();
        let settings = MemberSettings {
            ratelimits: None,
            credits: Some(credits(0, daily(2))),
        };
        store
            .put_member(&ws, &user, "admin", &settings, &actor())
            .await
            .unwrap();
        let both = |refill| {
            let (store, id, ws, user) = (&store, &key.id, &ws, &user);
            async move {
                let member = CreditHolder::Member {
                    workspace_id: ws,
                    user_id: user,
                };
                let charges = [
                    charge(CreditHolder::Key(id), ws, None),
                    charge(member, ws, refill),
                ];
                store.charge_credits(&charges).await
            }
        };
        // The member has nothing: the key's credit, taken first, is given back.
        assert_eq!(
            both(None).await.unwrap(),
            CreditOutcome::Exhausted {
                index: 1,
                remaining: 0
            }
        );
        let stored = store.get_key(&key.id).await.unwrap();
        assert_eq!(stored.credits.map(|c| c.remaining), Some(10));

        // The member's refill comes: both pay, and the refill is the member's, audited once.
        let boundary = daily(2).next_boundary(unix_now());
        assert_eq!(
            both(Some((boundary, 2))).await.unwrap(),
            CreditOutcome::Charged(vec![9, 1])
        );
        assert_eq!(
            both(Some((boundary, 2))).await.unwrap(),
            CreditOutcome::Charged(vec![8, 0])
        );
        assert!(matches!(
            both(Some((boundary, 2))).await.unwrap(),
            CreditOutcome::Exhausted { index: 1, .. }
        ));
        assert_eq!(audited(&store, &ws, "member.credits_refilled").await, 1);
        assert_eq!(audited(&store, &ws, "key.credits_refilled").await, 0);
        // Its last credit spent, the member's exhaustion was announced once.
        assert_eq!(audited(&store, &ws, "usage.exceeded").await, 1);
    })
    .await;
}
