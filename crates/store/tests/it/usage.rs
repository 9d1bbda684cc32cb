//! Usage (SPEC §11.3) as stored: one count lands in its minute, hour and day buckets, counts of
//! one bucket add up, and pruning drops each granularity's buckets older than its own cutoff,
//! nothing newer.

use crate::db::{each_backend, owner_and_key};
use latchkey_store::{Granularity, UsageCount, UsageFilter};

const DAY: i64 = 86_400;

#[tokio::test]
async fn usage_is_bucketed_by_minute_hour_and_day_and_pruned_per_granularity() {
    each_backend(|store, _| async move {
        let (owner, ws, _, new) = owner_and_key(&store).await;
        let (key, _) = store.create_key(&new, &crate::db::actor()).await.unwrap();
        // 2027-03-10 00:00 UTC, and minutes 40 days, 2 days and 1 hour before it.
        let now = 1_804_636_800;
        let count = |minute: i64, n: i64| UsageCount {
            key_id: key.id.clone(),
            workspace_id: ws.clone(),
            owner_id: owner.clone(),
            minute,
            code: "VALID",
            count: n,
            credits: n,
        };
        let (old, days_ago, hour_ago) = (now - 40 * DAY, now - 2 * DAY, now - 3_600);
        store
            .record_usage(&[count(old, 1), count(days_ago, 2), count(hour_ago, 3)])
            .await
            .unwrap();
        // A second flush into the same minute adds to it.
        store.record_usage(&[count(hour_ago, 4)]).await.unwrap();

        let filter = UsageFilter {
            key_id: Some(key.id.clone()),
            ..Default::default()
        };
        let read = |g: Granularity| {
            let (store, filter) = (&store, &filter);
            async move {
                store
                    .usage(filter, g, 0, now + DAY)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|r| (r.bucket_start, r.count))
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            read(Granularity::Minute).await,
            [(old, 1), (days_ago, 2), (hour_ago, 7)]
        );
        assert_eq!(
            read(Granularity::Day).await,
            [(old, 1), (days_ago, 2), (now - DAY, 7)]
        );

        // Cutoffs of a day, a week and a year (`[usage]` defaults to 48 hours, 90 days and
        // 1,825 days), each applied to its own granularity only.
        store
            .prune_usage(&[
                (Granularity::Minute, now - DAY),
                (Granularity::Hour, now - 7 * DAY),
                (Granularity::Day, now - 365 * DAY),
            ])
            .await
            .unwrap();
        assert_eq!(read(Granularity::Minute).await, [(hour_ago, 7)]);
        assert_eq!(
            read(Granularity::Hour).await,
            [(days_ago, 2), (hour_ago, 7)]
        );
        assert_eq!(
            read(Granularity::Day).await,
            [(old, 1), (days_ago, 2), (now - DAY, 7)]
        );
    })
    .await;
}
