//! Retention (issue 19 §4): audit events and usage rollups older than
//! `LATCHKEY_AUDIT_RETENTION_DAYS` are purged in batches, and purges running on several nodes
//! at once share the work and purge each row once.

use std::time::Duration;

use chrono::TimeDelta;
use diesel::prelude::*;
use latchkey::manage::retention::{Purged, purge};
use latchkey::store::schema::{audit_events, usage_rollups};

use crate::helpers::TestApp;

const DAY: u64 = 86_400;

#[tokio::test]
async fn what_is_past_retention_is_purged_in_batches_and_once() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let app = &world.app;
    let key = world.create_key(|k| k).await;
    let start = app.clock.now();
    {
        let mut conn = app.store.conn().unwrap();
        for age_days in [500i64, 450, 401, 399, 1] {
            let at = start - TimeDelta::days(age_days);
            diesel::insert_into(audit_events::table)
                .values((
                    audit_events::id.eq(format!("old-{age_days}")),
                    audit_events::tenant_id.eq(&world.tenant.id),
                    audit_events::occurred_at.eq(at),
                    audit_events::actor_type.eq("system"),
                    audit_events::actor_id.eq("latchkey"),
                    audit_events::action.eq("test.event"),
                    audit_events::target_type.eq("key"),
                    audit_events::target_id.eq(&key.id),
                    audit_events::changes.eq("{}"),
                ))
                .execute(&mut *conn)
                .unwrap();
            for outcome in ["VALID", "NOT_FOUND"] {
                diesel::insert_into(usage_rollups::table)
                    .values((
                        usage_rollups::tenant_id.eq(&world.tenant.id),
                        usage_rollups::key_id.eq(&key.id),
                        usage_rollups::hour.eq(at),
                        usage_rollups::outcome.eq(outcome),
                        usage_rollups::count.eq(3i64),
                    ))
                    .execute(&mut *conn)
                    .unwrap();
            }
        }
    }
    let count_old = || {
        let mut conn = app.store.conn().unwrap();
        let events: i64 = audit_events::table
            .filter(audit_events::action.eq("test.event"))
            .count()
            .get_result(&mut *conn)
            .unwrap();
        let rollups: i64 = usage_rollups::table.count().get_result(&mut *conn).unwrap();
        (events, rollups)
    };
    assert_eq!(count_old(), (5, 10));

    // Two nodes purge at once, two rows per batch: every row past 400 days goes, once.
    let now = app.clock.now();
    let (one, two) = tokio::join!(
        purge(&app.store, now, 400, 2),
        purge(&app.store, now, 400, 2)
    );
    let (one, two) = (one.unwrap(), two.unwrap());
    assert_eq!(one.audit_events + two.audit_events, 3);
    assert_eq!(one.usage_rollups + two.usage_rollups, 6);
    assert_eq!(count_old(), (2, 4), "399 days and 1 day are kept");
    assert_eq!(
        purge(&app.store, now, 400, 2).await.unwrap(),
        Purged::default(),
        "nothing left"
    );

    // Two days on (the clock moved, not waited for), the 399-day-old rows are past it too.
    app.clock.advance(Duration::from_secs(2 * DAY));
    let purged = purge(&app.store, app.clock.now(), 400, 500).await.unwrap();
    assert_eq!((purged.audit_events, purged.usage_rollups), (1, 2));
    assert_eq!(count_old(), (1, 2));
    // The key's own audit trail (created just now) is untouched.
    assert_eq!(app.audit(world.token(), "action=key.create").await.len(), 1);
}
