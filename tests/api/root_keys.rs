//! `/v1/root-keys`: create with at most the caller's scopes (shown once), list, revoke, and the
//! last-admin rule.

use serde_json::json;

use crate::helpers::{TestApp, assert_no_secret, assert_problem, expect_json, s};

#[tokio::test]
async fn create_list_and_revoke_root_keys() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let body = json!({"name": "billing service", "scopes": ["keys:verify", "keys:read"], "ttl_seconds": 3600});
    let response = app.post_json("/v1/root-keys", &t.root_key, &body).await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let created = expect_json(response, 201).await;
    let key = s(&created, "key");
    assert!(key.starts_with("lk_root_"));
    assert_eq!(created["start"], &key[.."lk_root_".len() + 4]);
    assert_eq!(created["name"], "billing service");
    assert_eq!(created["scopes"], json!(["keys:read", "keys:verify"]));
    assert!(created["expires_at"].is_string());
    assert_eq!(created["created_by"], format!("root_key:{}", t.root_key_id));
    let id = s(&created, "id");

    // The new key works for what it holds, and only for that.
    assert_eq!(app.get_as("/v1/keys", &key).await.status(), 200);
    assert_problem(app.get_as("/v1/keyspaces", &key).await, 403, "forbidden").await;

    let list = app.get_ok("/v1/root-keys", &t.root_key).await;
    assert_no_secret(&list, &key);
    assert_no_secret(&list, &t.root_key);
    let ids: Vec<String> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| s(k, "id"))
        .collect();
    assert_eq!(ids, vec![id.clone(), t.root_key_id.clone()]);
    let page = app.get_ok("/v1/root-keys?limit=1", &t.root_key).await;
    let cursor = s(&page, "next_cursor");
    let page = app
        .get_ok(
            &format!("/v1/root-keys?limit=1&cursor={cursor}"),
            &t.root_key,
        )
        .await;
    assert_eq!(page["data"][0]["id"], t.root_key_id.as_str());

    let revoked = expect_json(
        app.post_json(
            &format!("/v1/root-keys/{id}/revoke"),
            &t.root_key,
            &json!({}),
        )
        .await,
        200,
    )
    .await;
    assert!(revoked["revoked_at"].is_string());
    // At once: the revoked root key is refused on its very next call.
    let refused = app.get_as("/v1/keys", &key).await;
    assert!(refused.headers().contains_key("www-authenticate"));
    assert_problem(refused, 401, "unauthorized").await;
    let again = expect_json(
        app.post_json(
            &format!("/v1/root-keys/{id}/revoke"),
            &t.root_key,
            &json!({}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        again["revoked_at"], revoked["revoked_at"],
        "revoking twice changes nothing"
    );
    assert_problem(
        app.post_json(
            "/v1/root-keys/019a5f0e-7c1d-7b2a-9d4e-3f2a1b0c9d8e/revoke",
            &t.root_key,
            &json!({}),
        )
        .await,
        404,
        "not_found",
    )
    .await;

    let actions: Vec<String> = app
        .audit(&t.root_key, &format!("target={id}"))
        .await
        .iter()
        .map(|e| s(e, "action"))
        .collect();
    assert_eq!(actions, vec!["root_key.revoke", "root_key.create"]);
}

#[tokio::test]
async fn a_root_key_never_grants_more_than_it_holds() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let limited = app
        .create_root_key(&t.root_key, &["root_keys:*", "keys:read"])
        .await;
    let limited_key = s(&limited, "key");
    let ok = app.create_root_key(&limited_key, &["keys:read"]).await;
    assert_eq!(ok["scopes"], json!(["keys:read"]));
    for scopes in [
        json!(["keys:create"]),
        json!(["keys:read", "keys:verify"]),
        json!(["keys:*"]),
        json!(["*:*"]),
    ] {
        let body = json!({"name": "escalate", "scopes": scopes});
        let problem = assert_problem(
            app.post_json("/v1/root-keys", &limited_key, &body).await,
            403,
            "forbidden",
        )
        .await;
        assert!(!problem.to_string().contains(&limited_key));
    }
    // Even the bootstrap key cannot mint a wildcard it does not hold.
    let body = json!({"name": "everything", "scopes": ["*:*"]});
    assert_problem(
        app.post_json("/v1/root-keys", &t.root_key, &body).await,
        403,
        "forbidden",
    )
    .await;
    for body in [
        json!({"name": "none", "scopes": []}),
        json!({"name": "bad", "scopes": ["not a scope"]}),
        json!({"name": "", "scopes": ["keys:read"]}),
        json!({"name": "past", "scopes": ["keys:read"], "expires_at": "2020-01-01T00:00:00Z"}),
    ] {
        assert_problem(
            app.post_json("/v1/root-keys", &t.root_key, &body).await,
            422,
            "validation_failed",
        )
        .await;
    }
    let list = app.get_ok("/v1/root-keys", &t.root_key).await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        3,
        "no key was created by a refused request"
    );
}

#[tokio::test]
async fn the_last_root_admin_key_cannot_be_revoked_until_replaced() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let path = format!("/v1/root-keys/{}/revoke", t.root_key_id);
    assert_problem(
        app.post_json(&path, &t.root_key, &json!({})).await,
        409,
        "last_root_admin_key",
    )
    .await;
    // A key without root_keys:* does not count as a replacement.
    app.create_root_key(&t.root_key, &["root_keys:read", "root_keys:create"])
        .await;
    assert_problem(
        app.post_json(&path, &t.root_key, &json!({})).await,
        409,
        "last_root_admin_key",
    )
    .await;
    assert_eq!(
        app.get_as("/v1/keys", &t.root_key).await.status(),
        200,
        "still works"
    );
    let replacement = app
        .create_root_key(&t.root_key, &["root_keys:*", "audit:read"])
        .await;
    expect_json(app.post_json(&path, &t.root_key, &json!({})).await, 200).await;
    assert_problem(
        app.get_as("/v1/keys", &t.root_key).await,
        401,
        "unauthorized",
    )
    .await;
    // Now the replacement is the last admin.
    let replacement_key = s(&replacement, "key");
    let own = format!("/v1/root-keys/{}/revoke", s(&replacement, "id"));
    assert_problem(
        app.post_json(&own, &replacement_key, &json!({})).await,
        409,
        "last_root_admin_key",
    )
    .await;
    let events = app.audit(&replacement_key, "action=root_key.revoke").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["target"]["id"], t.root_key_id.as_str());
}

#[tokio::test]
async fn two_admin_keys_revoking_each_other_at_once_leave_one() {
    let app = TestApp::spawn().await;
    for round in 0..4 {
        let t = app.tenant(&format!("acme{round}")).await;
        let other = app.create_root_key(&t.root_key, &["root_keys:*"]).await;
        let other_key = s(&other, "key");
        let revoke_other = format!("/v1/root-keys/{}/revoke", s(&other, "id"));
        let revoke_first = format!("/v1/root-keys/{}/revoke", t.root_key_id);
        let empty = json!({});
        let (a, b) = tokio::join!(
            app.post_json(&revoke_other, &t.root_key, &empty),
            app.post_json(&revoke_first, &other_key, &empty),
        );
        let statuses = [a.status().as_u16(), b.status().as_u16()];
        assert!(statuses.contains(&200), "{statuses:?}");
        assert!(
            statuses.contains(&409) || statuses.contains(&401),
            "both admin keys were revoked: {statuses:?}"
        );
        let survivor = if statuses[0] == 200 {
            &t.root_key
        } else {
            &other_key
        };
        let list = app.get_ok("/v1/root-keys", survivor).await;
        let active = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["revoked_at"].is_null())
            .count();
        assert_eq!(active, 1, "round {round}");
    }
}
