//! `/v1/keyspaces`: create, list, read, update; prefix rules.

use serde_json::json;

use crate::helpers::{TestApp, assert_problem, expect_json, s};

#[tokio::test]
async fn create_read_list_and_update_a_keyspace() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let body = json!({"name": "Production", "prefix": "acme_live", "environment": "live",
        "default_ttl_seconds": 3600, "default_scopes": ["documents:read"],
        "default_ratelimit": {"limit": 10, "window_seconds": 60}});
    let created = expect_json(
        app.post_json("/v1/keyspaces", &t.root_key, &body).await,
        201,
    )
    .await;
    assert_eq!(created["prefix"], "acme_live");
    assert_eq!(created["environment"], "live");
    assert_eq!(created["default_ttl_seconds"], 3600);
    assert_eq!(created["default_scopes"], json!(["documents:read"]));
    assert_eq!(
        created["default_ratelimit"],
        json!({"limit": 10, "window_seconds": 60})
    );
    let id = s(&created, "id");

    let read = app
        .get_ok(&format!("/v1/keyspaces/{id}"), &t.root_key)
        .await;
    assert_eq!(read, created);

    let test_space = json!({"name": "Staging", "prefix": "acme_test", "environment": "test"});
    let second = expect_json(
        app.post_json("/v1/keyspaces", &t.root_key, &test_space)
            .await,
        201,
    )
    .await;
    assert_eq!(second["environment"], "test");
    assert_eq!(second["default_ttl_seconds"], serde_json::Value::Null);

    let list = app.get_ok("/v1/keyspaces", &t.root_key).await;
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![second["id"].as_str().unwrap(), id.as_str()],
        "newest first"
    );
    assert!(list["next_cursor"].is_null());

    // Pages of one.
    let page1 = app.get_ok("/v1/keyspaces?limit=1", &t.root_key).await;
    assert_eq!(page1["data"].as_array().unwrap().len(), 1);
    let cursor = s(&page1, "next_cursor");
    let page2 = app
        .get_ok(
            &format!("/v1/keyspaces?limit=1&cursor={cursor}"),
            &t.root_key,
        )
        .await;
    assert_eq!(page2["data"][0]["id"], id.as_str());
    assert!(page2["next_cursor"].is_null());

    // PATCH changes only what is given; null clears.
    let patch = json!({"name": "Production EU", "default_ttl_seconds": null});
    let updated = expect_json(
        app.patch_json(&format!("/v1/keyspaces/{id}"), &t.root_key, &patch)
            .await,
        200,
    )
    .await;
    assert_eq!(updated["name"], "Production EU");
    assert!(updated["default_ttl_seconds"].is_null());
    assert_eq!(updated["default_scopes"], json!(["documents:read"]));
    assert_eq!(updated["default_ratelimit"], created["default_ratelimit"]);
    assert_eq!(updated["prefix"], "acme_live");
    let patch = json!({"default_scopes": ["documents:*"], "default_ratelimit": null});
    let updated = expect_json(
        app.patch_json(&format!("/v1/keyspaces/{id}"), &t.root_key, &patch)
            .await,
        200,
    )
    .await;
    assert_eq!(updated["default_scopes"], json!(["documents:*"]));
    assert!(updated["default_ratelimit"].is_null());
    assert_eq!(updated["name"], "Production EU");

    let events = app.audit(&t.root_key, &format!("target={id}")).await;
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec!["keyspace.update", "keyspace.update", "keyspace.create"]
    );
}

#[tokio::test]
async fn prefixes_are_validated_and_unique_per_tenant() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    for bad in [
        "A_live",
        "a",
        "x".repeat(25).as_str(),
        "1abc",
        "acme-live",
        "acme live",
        "lk_root",
        "",
    ] {
        let body = json!({"name": "n", "prefix": bad});
        let problem = assert_problem(
            app.post_json("/v1/keyspaces", &t.root_key, &body).await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], "prefix", "{bad}");
    }
    app.create_keyspace(&t.root_key, "acme_live").await;
    let again = json!({"name": "again", "prefix": "acme_live"});
    assert_problem(
        app.post_json("/v1/keyspaces", &t.root_key, &again).await,
        409,
        "prefix_taken",
    )
    .await;
    // Another tenant may use the same prefix.
    let other = app.tenant("other").await;
    app.create_keyspace(&other.root_key, "acme_live").await;
    let list = app.get_ok("/v1/keyspaces", &t.root_key).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn invalid_keyspace_fields_are_422() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let cases = [
        (json!({"name": "", "prefix": "ok_one"}), "name"),
        (
            json!({"name": "n", "prefix": "ok_two", "default_ttl_seconds": 0}),
            "default_ttl_seconds",
        ),
        (
            json!({"name": "n", "prefix": "ok_three", "default_scopes": ["nocolon"]}),
            "default_scopes",
        ),
        (
            json!({"name": "n", "prefix": "ok_four", "default_ratelimit": {"limit": 0, "window_seconds": 60}}),
            "default_ratelimit",
        ),
    ];
    for (body, field) in cases {
        let problem = assert_problem(
            app.post_json("/v1/keyspaces", &t.root_key, &body).await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field);
    }
    let bad_env = json!({"name": "n", "prefix": "ok_five", "environment": "prod"});
    assert_problem(
        app.post_json("/v1/keyspaces", &t.root_key, &bad_env).await,
        422,
        "invalid_body",
    )
    .await;
    let list = app.get_ok("/v1/keyspaces", &t.root_key).await;
    assert!(
        list["data"].as_array().unwrap().is_empty(),
        "nothing was created"
    );

    let ks = app.create_keyspace(&t.root_key, "acme_live").await;
    let path = format!("/v1/keyspaces/{}", s(&ks, "id"));
    assert_problem(
        app.patch_json(&path, &t.root_key, &json!({"default_ttl_seconds": -5}))
            .await,
        422,
        "validation_failed",
    )
    .await;
    assert_problem(
        app.patch_json(&path, &t.root_key, &json!({"prefix": "new_prefix"}))
            .await,
        422,
        "invalid_body",
    )
    .await;
    assert_eq!(app.get_ok(&path, &t.root_key).await, ks, "nothing changed");

    for missing in [
        "/v1/keyspaces/019a5f0e-7c1d-7b2a-9d4e-3f2a1b0c9d8e",
        "/v1/keyspaces/not-an-id",
    ] {
        assert_problem(app.get_as(missing, &t.root_key).await, 404, "not_found").await;
        assert_problem(
            app.patch_json(missing, &t.root_key, &json!({"name": "x"}))
                .await,
            404,
            "not_found",
        )
        .await;
    }
    for bad in ["limit=0", "limit=101", "cursor=nonsense"] {
        assert_problem(
            app.get_as(&format!("/v1/keyspaces?{bad}"), &t.root_key)
                .await,
            422,
            "validation_failed",
        )
        .await;
    }
}
