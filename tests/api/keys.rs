//! `/v1/keys`: create (plaintext once), idempotent retries, defaults, validation, list filters
//! and pages, read, PATCH.

use serde_json::{Value, json};

use crate::helpers::{KeySpec, TestApp, TestKey, assert_no_secret, assert_problem, expect_json, s};

#[tokio::test]
async fn create_shows_the_plaintext_once_and_reads_never_do() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let (app, space) = (&world.app, world.space());
    let body = KeySpec::default()
        .name("Acme Corp production")
        .owner("customer_42")
        .scopes(["documents:read", "documents:write"])
        .meta(json!({"plan": "pro", "seats": 5}))
        .expires_in(3600)
        .ip_allowlist(["203.0.113.0/24", "2001:db8::/32"])
        .ratelimit(100, 60)
        .refilled_credits(1000, 1000, "monthly")
        .body(&space.keyspace_id);
    let response = app.post_json("/v1/keys", space.token(), &body).await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let created = expect_json(response, 201).await;
    let key = s(&created, "key");
    assert!(key.starts_with("acme_live_"), "{key}");
    assert_eq!(created["start"], &key[.."acme_live_".len() + 4]);
    assert_eq!(created["name"], "Acme Corp production");
    assert_eq!(created["owner_id"], "customer_42");
    assert_eq!(
        created["scopes"],
        json!(["documents:read", "documents:write"])
    );
    assert_eq!(created["meta"], json!({"plan": "pro", "seats": 5}));
    assert_eq!(
        created["ip_allowlist"],
        json!(["203.0.113.0/24", "2001:db8::/32"])
    );
    assert_eq!(
        created["ratelimit"],
        json!({"limit": 100, "window_seconds": 60})
    );
    assert_eq!(
        created["credits"],
        json!({"remaining": 1000, "refill": {"amount": 1000, "interval": "monthly"}})
    );
    assert_eq!(created["status"], "active");
    assert_eq!(created["enabled"], true);
    assert_eq!(created["keyspace_id"], space.keyspace_id.as_str());
    assert_eq!(created["family_id"], created["id"]);
    assert!(created["rotated_from"].is_null());
    let expires = chrono::DateTime::parse_from_rfc3339(&s(&created, "expires_at")).unwrap();
    let in_an_hour = chrono::Utc::now() + chrono::TimeDelta::seconds(3600);
    assert!((expires.to_utc() - in_an_hour).num_seconds().abs() < 60);
    assert!(created.get("digest").is_none());
    let id = s(&created, "id");

    let read = app.get_key(space.token(), &id).await;
    assert_no_secret(&read, &key);
    assert!(read.get("key").is_none());
    let mut expected = created.clone();
    expected.as_object_mut().unwrap().remove("key");
    assert_eq!(read, expected);
    let list = app.get_ok("/v1/keys", space.token()).await;
    assert_no_secret(&list, &key);
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert_eq!(app.verify_code(space.token(), &key).await, "IP_NOT_ALLOWED");
}

#[tokio::test]
async fn idempotency_key_replays_the_same_key_without_its_plaintext() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let (app, space) = (&world.app, world.space());
    let body = json!({"keyspace_id": space.keyspace_id, "name": "retry me",
        "meta": {"plan": "pro", "seats": 3}});
    let with_body = |body: String| {
        app.client
            .post(app.url("/v1/keys"))
            .bearer_auth(space.token())
            .header("idempotency-key", "create-42")
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let send = || with_body(body.to_string());
    let first = expect_json(send().await.unwrap(), 201).await;
    let key = s(&first, "key");
    let response = send().await.unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    let replay = expect_json(response, 200).await;
    assert_eq!(replay["id"], first["id"]);
    assert!(replay["key"].is_null());
    assert!(s(&replay, "note").contains("cannot be shown again"));
    assert_no_secret(&replay, &key);
    // The same request written differently (field order, in `meta` too, whitespace, `null`
    // for an absent field) is the same request.
    let reordered = format!(
        r#"{{ "meta": {{"seats": 3, "plan": "pro"}}, "name" : "retry me", "owner_id": null,
            "keyspace_id" : "{}" }}"#,
        space.keyspace_id
    );
    let replay = expect_json(with_body(reordered).await.unwrap(), 200).await;
    assert_eq!(replay["id"], first["id"]);
    // A different request under the same Idempotency-Key is refused, and makes nothing.
    let changed = json!({"keyspace_id": space.keyspace_id, "name": "something else"});
    let response = with_body(changed.to_string()).await.unwrap();
    assert_problem(response, 422, "idempotency_key_reused").await;
    // Without the header, a second key.
    let other = expect_json(app.post_json("/v1/keys", space.token(), &body).await, 201).await;
    assert_ne!(other["id"], first["id"]);
    let list = app.get_ok("/v1/keys", space.token()).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    // Another tenant using the same Idempotency-Key gets its own key.
    let b = app.space("bravo").await;
    let theirs = app
        .client
        .post(app.url("/v1/keys"))
        .bearer_auth(b.token())
        .header("idempotency-key", "create-42")
        .json(&json!({"keyspace_id": b.keyspace_id}))
        .send()
        .await
        .unwrap();
    let theirs = expect_json(theirs, 201).await;
    assert_ne!(theirs["id"], first["id"]);
    let long = app
        .client
        .post(app.url("/v1/keys"))
        .bearer_auth(space.token())
        .header("idempotency-key", "x".repeat(201))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_problem(long, 400, "invalid_idempotency_key").await;
}

#[tokio::test]
async fn concurrent_requests_with_one_idempotency_key_create_one_key() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let (app, space) = (&world.app, world.space());
    let body = json!({"keyspace_id": space.keyspace_id, "name": "once"});
    let responses = futures_util::future::join_all((0..8).map(|_| {
        app.client
            .post(app.url("/v1/keys"))
            .bearer_auth(space.token())
            .header("idempotency-key", "burst-1")
            .json(&body)
            .send()
    }))
    .await;
    let mut created = 0;
    for response in responses {
        let response = response.unwrap();
        match response.status().as_u16() {
            201 => created += 1,
            200 => {}
            409 => {
                assert_problem(response, 409, "idempotency_conflict").await;
            }
            other => panic!(
                "unexpected status {other}: {}",
                response.text().await.unwrap()
            ),
        }
    }
    assert_eq!(created, 1);
    let list = app.get_ok("/v1/keys", space.token()).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn keys_take_the_keyspace_defaults_unless_given() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let ks = json!({"name": "defaults", "prefix": "acme_live", "default_ttl_seconds": 600,
        "default_scopes": ["documents:read"], "default_ratelimit": {"limit": 5, "window_seconds": 10}});
    let ks = expect_json(app.post_json("/v1/keyspaces", &t.root_key, &ks).await, 201).await;
    let ks_id = s(&ks, "id");
    let key = expect_json(
        app.post_json("/v1/keys", &t.root_key, &json!({"keyspace_id": ks_id}))
            .await,
        201,
    )
    .await;
    assert_eq!(key["scopes"], json!(["documents:read"]));
    assert_eq!(key["ratelimit"], json!({"limit": 5, "window_seconds": 10}));
    let expires = chrono::DateTime::parse_from_rfc3339(&s(&key, "expires_at")).unwrap();
    let expected = chrono::Utc::now() + chrono::TimeDelta::seconds(600);
    assert!((expires.to_utc() - expected).num_seconds().abs() < 60);

    let own = json!({"keyspace_id": ks_id, "scopes": ["billing:read"], "ttl_seconds": 60,
        "ratelimit": {"limit": 1, "window_seconds": 1}});
    let key = expect_json(app.post_json("/v1/keys", &t.root_key, &own).await, 201).await;
    assert_eq!(key["scopes"], json!(["billing:read"]));
    assert_eq!(key["ratelimit"], json!({"limit": 1, "window_seconds": 1}));
    let expires = chrono::DateTime::parse_from_rfc3339(&s(&key, "expires_at")).unwrap();
    assert!((expires.to_utc() - chrono::Utc::now()).num_seconds() <= 60);
    let at = (chrono::Utc::now() + chrono::TimeDelta::days(2)).to_rfc3339();
    let key = expect_json(
        app.post_json(
            "/v1/keys",
            &t.root_key,
            &json!({"keyspace_id": ks_id, "expires_at": at}),
        )
        .await,
        201,
    )
    .await;
    let expires = chrono::DateTime::parse_from_rfc3339(&s(&key, "expires_at")).unwrap();
    assert!((expires.to_utc() - chrono::Utc::now()).num_hours() >= 47);
}

#[tokio::test]
async fn invalid_create_fields_are_422_and_create_nothing() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let (app, space) = (&world.app, world.space());
    let past = (chrono::Utc::now() - chrono::TimeDelta::minutes(1)).to_rfc3339();
    let future = (chrono::Utc::now() + chrono::TimeDelta::days(1)).to_rfc3339();
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"ttl_seconds": 60, "expires_at": future}),
            "expires_at",
        ),
        (json!({"expires_at": past}), "expires_at"),
        (json!({"ttl_seconds": 0}), "ttl_seconds"),
        (json!({"meta": {"big": "x".repeat(8 * 1024)}}), "meta"),
        (json!({"meta": [1, 2]}), "meta"),
        (json!({"ip_allowlist": ["10.0.0.0/33"]}), "ip_allowlist"),
        (json!({"ip_allowlist": ["not-an-ip"]}), "ip_allowlist"),
        (json!({"ip_allowlist": ["2001:db8::/129"]}), "ip_allowlist"),
        (json!({"scopes": ["Documents:Read"]}), "scopes"),
        (json!({"scopes": ["nocolon"]}), "scopes"),
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(201)}), "name"),
        (json!({"owner_id": ""}), "owner_id"),
        (
            json!({"ratelimit": {"limit": 0, "window_seconds": 60}}),
            "ratelimit",
        ),
        (json!({"credits": {"remaining": -1}}), "credits"),
        (
            json!({"keyspace_id": "019a5f0e-7c1d-7b2a-9d4e-3f2a1b0c9d8e"}),
            "keyspace_id",
        ),
        (json!({"keyspace_id": "nope"}), "keyspace_id"),
    ];
    for (extra, field) in cases {
        let mut body = json!({"keyspace_id": space.keyspace_id});
        crate::helpers::merge(&mut body, extra.clone());
        let problem = assert_problem(
            app.post_json("/v1/keys", space.token(), &body).await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field, "{extra}");
    }
    // meta just under the bound is fine.
    let ok_meta = json!({"m": "x".repeat(8 * 1024 - 10)});
    app.create_key(space, |k| k.meta(ok_meta)).await;
    let list = app.get_ok("/v1/keys", space.token()).await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "only the valid key exists"
    );
    assert_eq!(app.audit(space.token(), "action=key.create").await.len(), 1);
}

#[tokio::test]
async fn list_filters_by_keyspace_owner_status_and_name() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let (app, space) = (&world.app, world.space());
    let token = space.token();
    let other_ks = s(&app.create_keyspace(token, "acme_test").await, "id");
    let active = app
        .create_key(space, |k| k.name("Billing Service").owner("alice"))
        .await;
    let revoked = app
        .create_key(space, |k| k.name("old billing").owner("alice"))
        .await;
    let disabled = app
        .create_key(space, |k| k.name("paused").owner("bob").enabled(false))
        .await;
    let expired = app
        .create_key(space, |k| k.name("stale").owner("bob"))
        .await;
    let elsewhere = expect_json(
        app.post_json(
            "/v1/keys",
            token,
            &json!({"keyspace_id": other_ks, "name": "100%_odd"}),
        )
        .await,
        201,
    )
    .await;
    let elsewhere = TestKey::created(elsewhere);
    app.revoke(token, &revoked.id).await;
    app.expire_key_in_store(&expired.id);

    let ids = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| s(k, "id"))
            .collect()
    };
    let check = |query: &'static str, expected: Vec<&TestKey>| {
        let expected: Vec<String> = expected.iter().map(|k| k.id.clone()).collect();
        let app = &app;
        async move {
            let page = app.get_ok(&format!("/v1/keys?{query}"), token).await;
            assert_eq!(ids(&page), expected, "{query}");
            page
        }
    };
    check("", vec![&elsewhere, &expired, &disabled, &revoked, &active]).await;
    let by_ks = format!("keyspace_id={other_ks}");
    let page = app.get_ok(&format!("/v1/keys?{by_ks}"), token).await;
    assert_eq!(ids(&page), vec![elsewhere.id.clone()]);
    check("owner_id=alice", vec![&revoked, &active]).await;
    check("owner_id=nobody", vec![]).await;
    let page = check("status=active", vec![&elsewhere, &active]).await;
    assert!(
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["status"] == "active")
    );
    let page = check("status=revoked", vec![&revoked]).await;
    assert_eq!(page["data"][0]["status"], "revoked");
    let page = check("status=disabled", vec![&disabled]).await;
    assert_eq!(page["data"][0]["status"], "disabled");
    let page = check("status=expired", vec![&expired]).await;
    assert_eq!(page["data"][0]["status"], "expired");
    check("q=BILLING", vec![&revoked, &active]).await;
    check("q=100%25_", vec![&elsewhere]).await;
    check("q=_", vec![&elsewhere]).await;
    check("q=%25", vec![&elsewhere]).await;
    check("owner_id=bob&status=disabled", vec![&disabled]).await;
    assert_problem(
        app.get_as("/v1/keys?status=gone", token).await,
        422,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn list_pages_with_a_cursor_and_bounded_limit() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let (app, space) = (&world.app, world.space());
    let mut created = Vec::new();
    for i in 0..7 {
        let name = format!("k{i}");
        created.push(app.create_key(space, |k| k.name(&name)).await.id);
    }
    created.reverse();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/keys?limit=3&cursor={c}"),
            None => "/v1/keys?limit=3".to_owned(),
        };
        let page = app.get_ok(&path, space.token()).await;
        pages += 1;
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 3);
        seen.extend(data.iter().map(|k| s(k, "id")));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created, "every key once, newest first");
    let full = app.get_ok("/v1/keys?limit=100", space.token()).await;
    assert_eq!(full["data"].as_array().unwrap().len(), 7);
    assert!(full["next_cursor"].is_null());
    let exact = app.get_ok("/v1/keys?limit=7", space.token()).await;
    assert!(exact["next_cursor"].is_null(), "no empty last page");
    for bad in ["limit=0", "limit=101", "limit=-1", "cursor=%21%21"] {
        let problem = assert_problem(
            app.get_as(&format!("/v1/keys?{bad}"), space.token()).await,
            422,
            "validation_failed",
        )
        .await;
        assert!(
            problem["errors"][0]["field"] == "limit" || problem["errors"][0]["field"] == "cursor"
        );
    }
    assert_problem(
        app.get_as("/v1/keys?limit=ten", space.token()).await,
        422,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn patch_changes_only_the_given_fields_and_null_clears() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let (app, space) = (&world.app, world.space());
    let created = app
        .create_key(space, |k| {
            k.name("svc")
                .owner("alice")
                .scopes(["documents:read"])
                .meta(json!({"plan": "pro"}))
                .expires_in(3600)
                .ratelimit(10, 60)
                .credits(10)
                .ip_allowlist(["10.0.0.0/8"])
        })
        .await;
    let (id, key) = (&created.id, &created.key);
    let path = format!("/v1/keys/{id}");
    let updated = expect_json(
        app.patch_json(
            &path,
            space.token(),
            &json!({"scopes": ["documents:write"]}),
        )
        .await,
        200,
    )
    .await;
    assert_no_secret(&updated, key);
    assert_eq!(updated["scopes"], json!(["documents:write"]));
    for field in [
        "name",
        "owner_id",
        "meta",
        "expires_at",
        "ratelimit",
        "credits",
        "ip_allowlist",
        "enabled",
        "created_at",
    ] {
        assert_eq!(updated[field], created[field], "{field} unchanged");
    }
    let cleared = json!({"name": null, "owner_id": null, "expires_at": null, "ratelimit": null, "credits": null});
    let updated = expect_json(app.patch_json(&path, space.token(), &cleared).await, 200).await;
    for field in ["name", "owner_id", "expires_at", "ratelimit", "credits"] {
        assert!(updated[field].is_null(), "{field} cleared: {updated}");
    }
    assert_eq!(updated["meta"], json!({"plan": "pro"}));
    let set = json!({"name": "renamed", "meta": {"plan": "team"}, "ip_allowlist": [],
        "expires_at": (chrono::Utc::now() + chrono::TimeDelta::days(1)).to_rfc3339()});
    let updated = expect_json(app.patch_json(&path, space.token(), &set).await, 200).await;
    assert_eq!(updated["name"], "renamed");
    assert_eq!(updated["meta"], json!({"plan": "team"}));
    assert_eq!(updated["ip_allowlist"], json!([]));
    assert!(updated["expires_at"].is_string());
    let verified = app.verify_with(space.token(), json!({"key": key})).await;
    assert_eq!(verified["code"], "VALID");
    assert_eq!(verified["meta"], json!({"plan": "team"}));
    assert_eq!(verified["name"], "renamed");

    // Invalid changes are refused and change nothing. (`last_used_at` is left out: the usage
    // of the verification above may be flushed at any moment.)
    let without_last_use = |mut key: Value| {
        key.as_object_mut().unwrap().remove("last_used_at");
        key
    };
    let before = without_last_use(app.get_key(space.token(), id).await);
    let past = (chrono::Utc::now() - chrono::TimeDelta::minutes(1)).to_rfc3339();
    for (body, field) in [
        (json!({"expires_at": past}), "expires_at"),
        (json!({"ip_allowlist": ["300.0.0.1"]}), "ip_allowlist"),
        (json!({"meta": {"big": "x".repeat(9000)}}), "meta"),
        (json!({"scopes": ["bad scope"]}), "scopes"),
        (json!({"name": "ok", "scopes": ["bad scope"]}), "scopes"),
    ] {
        let problem = assert_problem(
            app.patch_json(&path, space.token(), &body).await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field);
    }
    assert_problem(
        app.patch_json(&path, space.token(), &json!({"keyspace_id": "x"}))
            .await,
        422,
        "invalid_body",
    )
    .await;
    assert_eq!(
        without_last_use(app.get_key(space.token(), id).await),
        before
    );
    assert_problem(
        app.get_as(
            "/v1/keys/019a5f0e-7c1d-7b2a-9d4e-3f2a1b0c9d8e",
            space.token(),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.patch_json("/v1/keys/nope", space.token(), &json!({"name": "x"}))
            .await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn disabling_is_reversible_and_revoked_keys_cannot_be_patched() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let (app, space) = (&world.app, world.space());
    let TestKey { id, key, .. } = app.create_key(space, |k| k).await;
    let path = format!("/v1/keys/{id}");
    let disabled = expect_json(
        app.patch_json(&path, space.token(), &json!({"enabled": false}))
            .await,
        200,
    )
    .await;
    assert_eq!(disabled["status"], "disabled");
    assert_eq!(app.verify_code(space.token(), &key).await, "DISABLED");
    let enabled = expect_json(
        app.patch_json(&path, space.token(), &json!({"enabled": true}))
            .await,
        200,
    )
    .await;
    assert_eq!(enabled["status"], "active");
    assert_eq!(app.verify_code(space.token(), &key).await, "VALID");
    let actions: Vec<String> = app
        .audit(space.token(), &format!("target={id}"))
        .await
        .iter()
        .map(|e| s(e, "action"))
        .collect();
    assert_eq!(actions, vec!["key.enable", "key.disable", "key.create"]);

    expect_json(
        app.post_json(&format!("{path}/revoke"), space.token(), &json!({}))
            .await,
        200,
    )
    .await;
    for body in [
        json!({"enabled": true}),
        json!({"name": "again"}),
        json!({"expires_at": null}),
    ] {
        assert_problem(
            app.patch_json(&path, space.token(), &body).await,
            409,
            "key_revoked",
        )
        .await;
    }
    assert_eq!(app.verify_code(space.token(), &key).await, "REVOKED");
    assert_eq!(app.get_key(space.token(), &id).await["status"], "revoked");
}

#[tokio::test]
async fn concurrent_creates_and_updates_all_succeed() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let (app, space) = (&world.app, world.space());
    let body = json!({"keyspace_id": space.keyspace_id});
    let creates = futures_util::future::join_all(
        (0..16).map(|_| app.post_json("/v1/keys", space.token(), &body)),
    )
    .await;
    let mut ids = Vec::new();
    for response in creates {
        ids.push(s(&expect_json(response, 201).await, "id"));
    }
    let rename = json!({"name": "renamed"});
    let paths: Vec<String> = ids.iter().map(|id| format!("/v1/keys/{id}")).collect();
    let updates = futures_util::future::join_all(
        paths
            .iter()
            .map(|path| app.patch_json(path, space.token(), &rename)),
    )
    .await;
    for response in updates {
        expect_json(response, 200).await;
    }
    let list = app.get_ok("/v1/keys?q=renamed", space.token()).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 16);
}
