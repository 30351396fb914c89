//! Abuse limits: per-root-key throttling of management calls (never of verification).

use serde_json::json;

use crate::helpers::{TestApp, assert_problem};

#[tokio::test]
async fn management_calls_are_throttled_per_root_key_but_verify_is_not() {
    // Three management calls: the keyspace, the key and one list.
    let world = TestApp::spawn_with(&[("LATCHKEY_MANAGEMENT_RATE_LIMIT", "3")])
        .await
        .with_space("acme")
        .await;
    let key = world.create_key(|k| k).await;
    let (app, t) = (&world.app, &world.tenant);
    let body = json!({"keyspace_id": world.space().keyspace_id});
    app.get_ok("/v1/keys", &t.root_key).await;
    let response = app.get_as("/v1/keys", &t.root_key).await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_problem(response, 429, "rate_limited").await;
    // Writes are refused too.
    let refused = app.post_json("/v1/keys", &t.root_key, &body).await;
    assert_problem(refused, 429, "rate_limited").await;
    // Verification is the hot path: never throttled by the management limit.
    for _ in 0..10 {
        assert_eq!(app.verify_code(&t.root_key, &key.key).await, "VALID");
    }
    // Another tenant's root key has its own budget.
    let other = app.tenant("other").await;
    app.get_ok("/v1/keys", &other.root_key).await;
    // Unauthenticated calls are 401, not 429.
    assert_problem(app.get("/v1/keys").await, 401, "unauthorized").await;
    // The refused create did not happen: counted straight from the store.
    use diesel::{ExpressionMethods, QueryDsl, RunQueryDsl};
    use latchkey::store::schema::api_keys;
    let mut conn = app.store.conn().unwrap();
    let count: i64 = api_keys::table
        .filter(api_keys::tenant_id.eq(&t.id))
        .count()
        .get_result(&mut *conn)
        .unwrap();
    assert_eq!(count, 1);
}
