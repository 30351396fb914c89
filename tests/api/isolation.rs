//! Tenant isolation: another tenant's root key sees nothing and touches nothing of tenant A.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, expect_json, s};

#[tokio::test]
async fn another_tenant_gets_404_for_every_id_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let a = app.space("acme").await;
    let b = app.space("bravo").await;
    let bt = b.token();
    let key = app
        .create_key(&a, |k| {
            k.name("secret project")
                .owner("alice")
                .scopes(["documents:read"])
        })
        .await;
    let (key_id, raw) = (key.id, key.key);
    let a_root = app.create_root_key(a.token(), &["keys:read"]).await;
    let a_root_id = s(&a_root, "id");
    let ks = format!("/v1/keyspaces/{}", a.keyspace_id);
    let before_key = app.get_key(a.token(), &key_id).await;
    let before_ks = app.get_ok(&ks, a.token()).await;

    assert_problem(app.get_as(&ks, bt).await, 404, "not_found").await;
    let pwn = json!({"name": "pwned", "default_ttl_seconds": 1});
    assert_problem(app.patch_json(&ks, bt, &pwn).await, 404, "not_found").await;
    let kp = format!("/v1/keys/{key_id}");
    assert_problem(app.get_as(&kp, bt).await, 404, "not_found").await;
    let pwn = json!({"enabled": false, "scopes": ["*:*"]});
    assert_problem(app.patch_json(&kp, bt, &pwn).await, 404, "not_found").await;
    let rotate = json!({"grace_period_seconds": 0});
    let response = app.post_json(&format!("{kp}/rotate"), bt, &rotate).await;
    assert_problem(response, 404, "not_found").await;
    let response = app
        .post_json(&format!("{kp}/revoke"), bt, &json!({"reason": "pwned"}))
        .await;
    assert_problem(response, 404, "not_found").await;
    for path in [format!("{kp}?force=true"), format!("{ks}?force=true")] {
        let response = app.delete_as(&path, bt).await;
        assert_problem(response, 404, "not_found").await;
    }
    for id in [&a_root_id, &a.tenant.root_key_id] {
        let response = app
            .post_json(&format!("/v1/root-keys/{id}/revoke"), bt, &json!({}))
            .await;
        assert_problem(response, 404, "not_found").await;
    }
    // A's key role: every id-taking endpoint is a 404, and B's keys cannot be given it.
    let role = expect_json(
        app.post_json(
            "/v1/roles",
            a.token(),
            &json!({"name": "a-admin", "scopes": ["admin:*"]}),
        )
        .await,
        201,
    )
    .await;
    let rp = format!("/v1/roles/{}", s(&role, "id"));
    assert_problem(app.get_as(&rp, bt).await, 404, "not_found").await;
    let pwn = json!({"scopes": ["*:*"]});
    assert_problem(app.patch_json(&rp, bt, &pwn).await, 404, "not_found").await;
    for path in [rp.clone(), format!("{rp}?force=true")] {
        assert_problem(app.delete_as(&path, bt).await, 404, "not_found").await;
    }
    for roles in [json!([s(&role, "id")]), json!(["a-admin"])] {
        let body = json!({"keyspace_id": b.keyspace_id, "roles": roles});
        let response = app.post_json("/v1/keys", bt, &body).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], "roles");
    }
    assert_eq!(app.get_ok(&rp, a.token()).await, role);
    assert_eq!(app.get_ok("/v1/roles", bt).await["data"], json!([]));

    // Creating a key in A's keyspace: the keyspace does not exist for B.
    let response = app
        .post_json("/v1/keys", bt, &json!({"keyspace_id": a.keyspace_id}))
        .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "keyspace_id");
    // Bulk revocations by every selector count nothing of A's.
    for body in [
        json!({"ids": [key_id]}),
        json!({"owner_id": "alice"}),
        json!({"keyspace_id": a.keyspace_id}),
        json!({"keys": [raw]}),
    ] {
        let answer = expect_json(app.post_json("/v1/keys/revoke", bt, &body).await, 200).await;
        assert_eq!(answer, json!({"revoked": 0}), "{body}");
    }
    // Verify: A's key is NOT_FOUND for B, with no detail at all.
    let answer = app
        .verify_with(bt, json!({"key": raw, "scopes": ["documents:read"]}))
        .await;
    assert_eq!(answer, json!({"valid": false, "code": "NOT_FOUND"}));

    // Nothing changed for A.
    assert_eq!(app.get_key(a.token(), &key_id).await, before_key);
    assert_eq!(app.get_ok(&ks, a.token()).await, before_ks);
    assert_eq!(app.verify_code(a.token(), &raw).await, "VALID");
    assert_eq!(
        app.get_as("/v1/keys", &s(&a_root, "key")).await.status(),
        200
    );
    let a_list = app.get_ok("/v1/keys", a.token()).await;
    assert_eq!(
        a_list["data"].as_array().unwrap().len(),
        1,
        "B created nothing in A"
    );
    let a_roots = app.get_ok("/v1/root-keys", a.token()).await;
    assert!(
        a_roots["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["revoked_at"].is_null())
    );
}

#[tokio::test]
async fn nothing_of_one_tenant_appears_in_anothers_lists_or_audit_log() {
    let app = TestApp::spawn().await;
    let a = app.space("acme").await;
    let b = app.space("bravo").await;
    let bt = b.token();
    let key_id = app
        .create_key(&a, |k| k.name("acme only").owner("shared-owner"))
        .await
        .id;
    let rotate = json!({"grace_period_seconds": 60});
    let response = app
        .post_json(&format!("/v1/keys/{key_id}/rotate"), a.token(), &rotate)
        .await;
    expect_json(response, 201).await;
    app.create_root_key(a.token(), &["keys:read"]).await;
    let b_key = app.create_key(&b, |k| k.owner("shared-owner")).await;

    let mut a_ids = vec![
        a.tenant.id.clone(),
        a.keyspace_id.clone(),
        a.tenant.root_key_id.clone(),
    ];
    for path in ["/v1/keys", "/v1/root-keys", "/v1/audit-events"] {
        let page = app.get_ok(path, a.token()).await;
        a_ids.extend(page["data"].as_array().unwrap().iter().map(|v| s(v, "id")));
    }
    let paths = [
        "/v1/keys".to_owned(),
        "/v1/keys?owner_id=shared-owner".to_owned(),
        format!("/v1/keys?keyspace_id={}", a.keyspace_id),
        "/v1/keys?q=acme".to_owned(),
        "/v1/keyspaces".to_owned(),
        "/v1/root-keys".to_owned(),
        "/v1/audit-events?limit=100".to_owned(),
        format!("/v1/audit-events?target={key_id}"),
        format!("/v1/audit-events?actor={}", a.tenant.root_key_id),
    ];
    for path in &paths {
        let list: Value = app.get_ok(path, bt).await;
        let text = list.to_string();
        for id in &a_ids {
            assert!(
                !text.contains(id.as_str()),
                "tenant A's {id} leaked into {path}: {text}"
            );
        }
        assert!(!text.contains("acme"), "{path}: {text}");
    }
    let b_keys = app.get_ok("/v1/keys?owner_id=shared-owner", bt).await;
    assert_eq!(b_keys["data"].as_array().unwrap().len(), 1);
    assert_eq!(b_keys["data"][0]["id"], b_key.id);
    assert!(app.audit(bt, &format!("target={key_id}")).await.is_empty());
    // The NDJSON export is tenant-scoped too.
    let export = app
        .get_as("/v1/audit-events?format=ndjson", bt)
        .await
        .text()
        .await
        .unwrap();
    assert!(!export.is_empty());
    for id in &a_ids {
        assert!(!export.contains(id.as_str()));
    }
}
