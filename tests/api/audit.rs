//! `/v1/audit-events`: every change is recorded with who, what, where from and which request;
//! filters, pages and the NDJSON export.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, expect_json, s};

#[tokio::test]
async fn every_change_is_recorded_with_its_request() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let token = t.root_key.as_str();
    let mut expected: Vec<(String, String, String)> = Vec::new(); // (action, target id, request id)
    let mut secrets: Vec<String> = vec![t.root_key.clone()];
    let send = async |method: reqwest::Method, path: String, body: Value, status: u16| -> Value {
        let response = app
            .client
            .request(method, app.url(&path))
            .bearer_auth(token)
            .header("user-agent", "audit-test/1.0")
            .json(&body)
            .send()
            .await
            .unwrap();
        let request_id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let mut answer = expect_json(response, status).await;
        answer["_request_id"] = json!(request_id);
        answer
    };
    let ks = send(
        reqwest::Method::POST,
        "/v1/keyspaces".into(),
        json!({"name": "Prod", "prefix": "acme_live"}),
        201,
    )
    .await;
    let ks_id = s(&ks, "id");
    expected.push((
        "keyspace.create".into(),
        ks_id.clone(),
        s(&ks, "_request_id"),
    ));
    let r = send(
        reqwest::Method::PATCH,
        format!("/v1/keyspaces/{ks_id}"),
        json!({"name": "Production"}),
        200,
    )
    .await;
    expected.push((
        "keyspace.update".into(),
        ks_id.clone(),
        s(&r, "_request_id"),
    ));
    let key = send(
        reqwest::Method::POST,
        "/v1/keys".into(),
        json!({"keyspace_id": ks_id, "name": "svc"}),
        201,
    )
    .await;
    let key_id = s(&key, "id");
    secrets.push(s(&key, "key"));
    expected.push(("key.create".into(), key_id.clone(), s(&key, "_request_id")));
    let r = send(
        reqwest::Method::PATCH,
        format!("/v1/keys/{key_id}"),
        json!({"meta": {"a": 1}}),
        200,
    )
    .await;
    expected.push(("key.update".into(), key_id.clone(), s(&r, "_request_id")));
    let r = send(
        reqwest::Method::PATCH,
        format!("/v1/keys/{key_id}"),
        json!({"enabled": false}),
        200,
    )
    .await;
    expected.push(("key.disable".into(), key_id.clone(), s(&r, "_request_id")));
    let r = send(
        reqwest::Method::PATCH,
        format!("/v1/keys/{key_id}"),
        json!({"enabled": true}),
        200,
    )
    .await;
    expected.push(("key.enable".into(), key_id.clone(), s(&r, "_request_id")));
    let rotated = send(
        reqwest::Method::POST,
        format!("/v1/keys/{key_id}/rotate"),
        json!({"grace_period_seconds": 60}),
        201,
    )
    .await;
    let new_id = s(&rotated, "id");
    secrets.push(s(&rotated, "key"));
    expected.push((
        "key.rotate".into(),
        key_id.clone(),
        s(&rotated, "_request_id"),
    ));
    expected.push((
        "key.create".into(),
        new_id.clone(),
        s(&rotated, "_request_id"),
    ));
    let r = send(
        reqwest::Method::POST,
        format!("/v1/keys/{new_id}/revoke"),
        json!({"reason": "done"}),
        200,
    )
    .await;
    expected.push(("key.revoke".into(), new_id.clone(), s(&r, "_request_id")));
    let r = send(
        reqwest::Method::POST,
        "/v1/keys/revoke".into(),
        json!({"ids": [key_id]}),
        200,
    )
    .await;
    expected.push(("key.revoke".into(), key_id.clone(), s(&r, "_request_id")));
    let rk = send(
        reqwest::Method::POST,
        "/v1/root-keys".into(),
        json!({"name": "ro", "scopes": ["keys:read"]}),
        201,
    )
    .await;
    let rk_id = s(&rk, "id");
    secrets.push(s(&rk, "key"));
    expected.push((
        "root_key.create".into(),
        rk_id.clone(),
        s(&rk, "_request_id"),
    ));
    let r = send(
        reqwest::Method::POST,
        format!("/v1/root-keys/{rk_id}/revoke"),
        json!({}),
        200,
    )
    .await;
    expected.push((
        "root_key.revoke".into(),
        rk_id.clone(),
        s(&r, "_request_id"),
    ));
    // Reads and verifications are not state changes.
    send(reqwest::Method::GET, "/v1/keys".into(), json!(null), 200).await;
    send(
        reqwest::Method::POST,
        "/v1/keys/verify".into(),
        json!({"key": secrets[1]}),
        200,
    )
    .await;

    let events = app.audit(token, "").await;
    let events: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] != "tenant.create" && e["actor"]["type"] == "root_key")
        .collect();
    let got: Vec<(String, String, String)> = events
        .iter()
        .rev()
        .map(|e| (s(e, "action"), s(&e["target"], "id"), s(e, "request_id")))
        .collect();
    assert_eq!(got, expected);
    for event in &events {
        assert_eq!(
            event["actor"],
            json!({"type": "root_key", "id": t.root_key_id})
        );
        assert_eq!(event["ip"], "127.0.0.1");
        assert_eq!(event["user_agent"], "audit-test/1.0");
        assert!(event["occurred_at"].is_string());
        assert!(event["changes"].is_object());
        for secret in &secrets {
            assert!(
                !event.to_string().contains(secret.as_str()),
                "no secret in {event}"
            );
        }
        assert!(!event.to_string().contains("digest"));
    }
    let revoke = events
        .iter()
        .find(|e| e["action"] == "key.revoke" && e["target"]["id"] == new_id.as_str())
        .unwrap();
    assert_eq!(revoke["changes"]["reason"], "done");
    let update = events
        .iter()
        .find(|e| e["action"] == "keyspace.update")
        .unwrap();
    assert_eq!(update["changes"], json!({"name": "Production"}));
}

#[tokio::test]
async fn filters_and_pages() {
    let app = TestApp::spawn().await;
    let space = app.space("acme").await;
    let t = space.token();
    let other = app.create_root_key(t, &["keys:create", "audit:read"]).await;
    let other_key = s(&other, "key");
    let k1 = app.create_key(&space, |k| k).await.id;
    app.clock.advance(std::time::Duration::from_secs(1));
    let before_second = app.clock.now().and_utc();
    app.clock.advance(std::time::Duration::from_secs(1));
    let k2 = expect_json(
        app.post_json(
            "/v1/keys",
            &other_key,
            &json!({"keyspace_id": space.keyspace_id}),
        )
        .await,
        201,
    )
    .await;
    let k2 = s(&k2, "id");
    app.clock.advance(std::time::Duration::from_secs(1));
    let after_second = app.clock.now().and_utc();
    app.clock.advance(std::time::Duration::from_secs(1));
    expect_json(
        app.post_json(&format!("/v1/keys/{k1}/revoke"), t, &json!({}))
            .await,
        200,
    )
    .await;

    let ids = |events: Vec<Value>| -> Vec<String> {
        events.iter().map(|e| s(&e["target"], "id")).collect()
    };
    assert_eq!(
        ids(app.audit(t, "action=key.create").await),
        vec![k2.clone(), k1.clone()]
    );
    assert_eq!(
        ids(app.audit(t, "action=key.revoke").await),
        vec![k1.clone()]
    );
    assert_eq!(
        ids(app.audit(t, &format!("actor={}", s(&other, "id"))).await),
        vec![k2.clone()]
    );
    let on_k1: Vec<String> = app
        .audit(t, &format!("target={k1}"))
        .await
        .iter()
        .map(|e| s(e, "action"))
        .collect();
    assert_eq!(on_k1, vec!["key.revoke", "key.create"]);
    let fmt =
        |at: chrono::DateTime<chrono::Utc>| at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let window = format!("since={}&until={}", fmt(before_second), fmt(after_second));
    assert_eq!(ids(app.audit(t, &window).await), vec![k2.clone()]);
    assert_eq!(
        ids(app
            .audit(t, &format!("action=key.revoke&since={}", fmt(after_second)))
            .await),
        vec![k1.clone()]
    );
    assert!(app.audit(t, "action=no.such.action").await.is_empty());

    let all = app.audit(t, "").await;
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/audit-events?limit=2&cursor={c}"),
            None => "/v1/audit-events?limit=2".to_owned(),
        };
        let page = app.get_ok(&path, t).await;
        paged.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(paged, all);
    for bad in ["limit=0", "limit=101", "cursor=zzz"] {
        assert_problem(
            app.get_as(&format!("/v1/audit-events?{bad}"), t).await,
            422,
            "validation_failed",
        )
        .await;
    }
    // A value that is not of the parameter's type is a bad value like any other (422).
    for bad in ["since=yesterday", "bogus=1"] {
        assert_problem(
            app.get_as(&format!("/v1/audit-events?{bad}"), t).await,
            422,
            "validation_failed",
        )
        .await;
    }
    assert_problem(
        app.get_as("/v1/audit-events?format=csv", t).await,
        422,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn ndjson_exports_every_matching_event() {
    let app = TestApp::spawn().await;
    let space = app.space("acme").await;
    let t = space.token();
    // More events than one JSON page holds (100) and than one export chunk (500): written
    // straight to the store to keep the test cheap.
    {
        use diesel::Connection;
        use latchkey::store::audit_events;
        use latchkey::store::models::AuditEventRow;
        let mut conn = app.store.conn().unwrap();
        // One transaction: quick, so the HTTP client's pooled connection does not idle out.
        conn.transaction(|conn| {
            for i in 0..620 {
                audit_events::insert(
                    conn,
                    &AuditEventRow {
                        id: uuid::Uuid::now_v7().to_string(),
                        tenant_id: space.tenant.id.clone(),
                        occurred_at: chrono::Utc::now().naive_utc(),
                        actor_type: "root_key".into(),
                        actor_id: space.tenant.root_key_id.clone(),
                        action: "test.bulk".into(),
                        target_type: "key".into(),
                        target_id: format!("target-{i}"),
                        changes: "{}".into(),
                        ip: None,
                        user_agent: None,
                        request_id: None,
                    },
                )?;
            }
            Ok::<_, latchkey::store::StoreError>(())
        })
        .unwrap();
    }
    let response = app.get_as("/v1/audit-events?format=ndjson", t).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let total = app.audit(t, "").await.len();
    assert_eq!(total, 100, "the JSON API pages");
    let bulk = lines.iter().filter(|e| e["action"] == "test.bulk").count();
    assert_eq!(bulk, 620);
    let mut ids: Vec<&str> = lines.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let count = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), count, "no event twice across chunks");
    assert!(lines.iter().any(|e| e["action"] == "keyspace.create"));

    // Filters apply to the export; a small filtered set matches the JSON list.
    let id = app.create_key(&space, |k| k).await.id;
    app.revoke(t, &id).await;
    let text = app
        .get_as(&format!("/v1/audit-events?format=ndjson&target={id}"), t)
        .await
        .text()
        .await
        .unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, app.audit(t, &format!("target={id}")).await);
    assert_eq!(lines.len(), 2);
    let empty = app
        .get_as("/v1/audit-events?format=ndjson&action=none", t)
        .await;
    assert_eq!(empty.status(), 200);
    assert!(empty.text().await.unwrap().is_empty());
}
