//! `DELETE /v1/keys/{id}` and `DELETE /v1/keyspaces/{id}` (issue 19 §4): revoked or expired keys
//! go, live ones only with `force=true` (revoked first); a tombstone of each digest keeps a
//! deleted key from ever verifying or being imported again.

use serde_json::json;

use crate::helpers::{TestApp, assert_problem, expect_json, s};

#[tokio::test]
async fn a_revoked_key_is_deleted_and_nothing_of_it_verifies() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let (app, t) = (&world.app, world.token());
    let key = world.create_key(|k| k.name("old")).await;
    assert_eq!(
        world.verify_code(&key.key).await,
        "VALID",
        "cached on this node"
    );
    let path = format!("/v1/keys/{}", key.id);
    let revoked = app
        .post_json(&format!("{path}/revoke"), t, &json!({"reason": "done"}))
        .await;
    assert_eq!(revoked.status(), 200);

    assert_eq!(app.delete_as(&path, t).await.status(), 204);
    assert_eq!(world.verify_code(&key.key).await, "NOT_FOUND");
    assert_problem(app.get_as(&path, t).await, 404, "not_found").await;
    assert_problem(app.delete_as(&path, t).await, 404, "not_found").await;
    let deleted = app.audit(t, "action=key.delete").await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["target"]["id"], key.id.as_str());
    assert_eq!(deleted[0]["changes"]["forced"], false);

    // The tombstone refuses the same key for good.
    let again = json!({"keys": [{"external_ref": "back", "key": key.key,
        "keyspace_id": world.space().keyspace_id}]});
    let answer = expect_json(app.post_json("/v1/keys/import", t, &again).await, 200).await;
    assert_eq!(answer["results"][0]["status"], "duplicate", "{answer}");
    assert_eq!(world.verify_code(&key.key).await, "NOT_FOUND");
}

#[tokio::test]
async fn a_live_key_is_deleted_only_when_forced_which_revokes_it_first() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let (app, t) = (&world.app, world.token());
    let key = world.create_key(|k| k).await;
    let path = format!("/v1/keys/{}", key.id);
    assert_problem(app.delete_as(&path, t).await, 409, "key_active").await;
    assert_eq!(
        world.verify_code(&key.key).await,
        "VALID",
        "nothing changed"
    );
    let disabled = app.patch_json(&path, t, &json!({"enabled": false})).await;
    assert_eq!(disabled.status(), 200);
    assert_problem(app.delete_as(&path, t).await, 409, "key_active").await;
    let bad = app.delete_as(&format!("{path}?force=maybe"), t).await;
    assert_problem(bad, 422, "validation_failed").await;

    assert_eq!(
        app.delete_as(&format!("{path}?force=true"), t)
            .await
            .status(),
        204
    );
    assert_eq!(world.verify_code(&key.key).await, "NOT_FOUND");
    let revoked = app.audit(t, "action=key.revoke").await;
    assert_eq!(revoked[0]["changes"]["reason"], "deleted");
    let deleted = app.audit(t, "action=key.delete").await;
    assert_eq!(deleted[0]["changes"]["forced"], true);

    // An expired key needs no force.
    let expiring = world.create_key(|k| k).await;
    app.expire_key_in_store(&expiring.id);
    let path = format!("/v1/keys/{}", expiring.id);
    assert_eq!(app.delete_as(&path, t).await.status(), 204);
}

#[tokio::test]
async fn an_imported_key_deleted_before_its_first_use_cannot_come_back() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let (app, t, ks) = (&world.app, world.token(), &world.space().keyspace_id);
    let key = "uk_4yW8dXkQpL2mZrT9vBn3sC";
    let b64 = {
        use base64::Engine as _;
        use sha2::Digest as _;
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(key.as_bytes()))
    };
    let item = |r: &str| json!({"external_ref": r, "sha256_base64": b64, "keyspace_id": ks});
    let answer = expect_json(
        app.post_json("/v1/keys/import", t, &json!({"keys": [item("a")]}))
            .await,
        200,
    )
    .await;
    let id = s(&answer["results"][0]["key"], "id");
    // The plaintext of a key imported by digest is the same key: a duplicate.
    let plain = json!({"keys": [{"external_ref": "p", "key": key, "keyspace_id": ks}]});
    let answer = expect_json(app.post_json("/v1/keys/import", t, &plain).await, 200).await;
    assert_eq!(answer["results"][0]["status"], "duplicate", "{answer}");

    let path = format!("/v1/keys/{id}?force=true");
    assert_eq!(app.delete_as(&path, t).await.status(), 204);
    assert_eq!(world.verify_code(key).await, "NOT_FOUND");
    for body in [json!({"keys": [item("b")]}), plain] {
        let answer = expect_json(app.post_json("/v1/keys/import", t, &body).await, 200).await;
        assert_eq!(answer["results"][0]["status"], "duplicate", "{answer}");
    }
    assert_eq!(world.verify_code(key).await, "NOT_FOUND");
}

#[tokio::test]
async fn a_keyspace_is_deleted_with_its_keys_by_the_same_rule() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let (app, t) = (&world.app, world.token());
    let live = world.create_key(|k| k).await;
    let revoked = world.create_key(|k| k).await;
    let response = app
        .post_json(&format!("/v1/keys/{}/revoke", revoked.id), t, &json!({}))
        .await;
    assert_eq!(response.status(), 200);
    let path = format!("/v1/keyspaces/{}", world.space().keyspace_id);

    assert_problem(app.delete_as(&path, t).await, 409, "key_active").await;
    assert_eq!(
        world.verify_code(&live.key).await,
        "VALID",
        "nothing changed"
    );
    assert_eq!(
        app.get_as(&format!("/v1/keys/{}", revoked.id), t)
            .await
            .status(),
        200
    );

    assert_eq!(
        app.delete_as(&format!("{path}?force=true"), t)
            .await
            .status(),
        204
    );
    assert_problem(app.get_as(&path, t).await, 404, "not_found").await;
    for key in [&live, &revoked] {
        assert_eq!(world.verify_code(&key.key).await, "NOT_FOUND");
        let response = app.get_as(&format!("/v1/keys/{}", key.id), t).await;
        assert_problem(response, 404, "not_found").await;
    }
    assert_eq!(app.audit(t, "action=key.delete").await.len(), 2);
    let deleted = app.audit(t, "action=keyspace.delete").await;
    assert_eq!(deleted[0]["changes"]["deleted_keys"], 2);
}
