//! Bad input: malformed JSON, wrong types, unknown fields, huge bodies and junk keys give 4xx
//! problem+json with a stable code (or a 200 NOT_FOUND verify answer), never 5xx, and change
//! nothing.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, expect_json};

/// Everything the tenant can see, to prove a request changed nothing.
async fn snapshot(app: &TestApp, token: &str) -> Value {
    json!({
        "keys": app.get_ok("/v1/keys", token).await,
        "keyspaces": app.get_ok("/v1/keyspaces", token).await,
        "root_keys": app.get_ok("/v1/root-keys", token).await,
        "audit": app.get_ok("/v1/audit-events?limit=100", token).await,
    })
}

#[tokio::test]
async fn malformed_bodies_are_4xx_problems_and_change_nothing() {
    let world = TestApp::spawn_with(&[("LATCHKEY_MAX_BODY_BYTES", "65536")])
        .await
        .with_space("acme")
        .await;
    let key = world.create_key(|k| k).await;
    let (app, space, t) = (&world.app, world.space(), world.token());
    let key_id = &key.id;
    let endpoints = [
        (Method::POST, "/v1/keyspaces".to_owned()),
        (
            Method::PATCH,
            format!("/v1/keyspaces/{}", space.keyspace_id),
        ),
        (Method::POST, "/v1/keys".to_owned()),
        (Method::PATCH, format!("/v1/keys/{key_id}")),
        (Method::POST, format!("/v1/keys/{key_id}/rotate")),
        (Method::POST, format!("/v1/keys/{key_id}/revoke")),
        (Method::POST, "/v1/keys/revoke".to_owned()),
        (Method::POST, "/v1/keys/verify".to_owned()),
        (Method::POST, "/v1/root-keys".to_owned()),
    ];
    let wrong_types = br#"{"name": 5, "reason": 5, "grace_period_seconds": "soon", "ids": 5,
        "key": 5, "scopes": "x", "enabled": "yes", "prefix": 1, "keyspace_id": 1}"#;
    let unknown = br#"{"no_such_field": 1}"#;
    let bodies: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("application/json", b"{".to_vec(), 400, "invalid_json"),
        ("application/json", b"{,}".to_vec(), 400, "invalid_json"),
        (
            "application/json",
            b"not json".to_vec(),
            400,
            "invalid_json",
        ),
        (
            "application/json",
            b"[[], {}]".to_vec(),
            422,
            "invalid_body",
        ),
        (
            "application/json",
            b"\"a string\"".to_vec(),
            422,
            "invalid_body",
        ),
        ("application/json", unknown.to_vec(), 422, "invalid_body"),
        (
            "application/json",
            wrong_types.to_vec(),
            422,
            "invalid_body",
        ),
        ("text/plain", b"{}".to_vec(), 415, "unsupported_media_type"),
        (
            "application/json",
            vec![b' '; 70_000],
            413,
            "payload_too_large",
        ),
        (
            "application/json",
            format!("{{\"reason\": \"{}\"}}", "x".repeat(70_000)).into_bytes(),
            413,
            "payload_too_large",
        ),
    ];
    let before = snapshot(app, t).await;
    for (method, path) in &endpoints {
        for (content_type, body, status, code) in &bodies {
            let response = app
                .client
                .request(method.clone(), app.url(path))
                .bearer_auth(t)
                .header("content-type", *content_type)
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let got = response.status().as_u16();
            let problem_type = response
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned());
            let text = response.text().await.unwrap();
            assert!(got < 500, "{method} {path}: {got} {text}");
            let shown = String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned();
            let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            assert_eq!(
                (got, answer["code"].as_str()),
                (*status, Some(*code)),
                "{method} {path} with {content_type} {shown:?}: {text}"
            );
            assert_eq!(problem_type.as_deref(), Some("application/problem+json"));
        }
    }
    assert_eq!(snapshot(app, t).await, before, "nothing changed");
    assert_eq!(app.verify_code(t, &key.key).await, "VALID");
}

#[tokio::test]
async fn junk_keys_to_verify_are_not_found_never_errors() {
    let app = TestApp::spawn().await;
    let a = app.space("acme").await;
    let b = app.space("bravo").await;
    let mine = app.create_key(&a, |k| k).await.key;
    let theirs = app.create_key(&b, |k| k).await.key;
    let mut bad_tag = mine.clone();
    let last = bad_tag.pop().unwrap();
    bad_tag.push(if last == 'a' { 'b' } else { 'a' });
    let wrong_prefix = mine.replacen("acme_live", "acme_test", 1);
    let no_prefix = mine["acme_live_".len()..].to_owned();
    let junk = vec![
        String::new(),
        " ".into(),
        "x".repeat(10 * 1024),
        format!("{mine}\0"),
        "\0\0\0".into(),
        format!("acme_live_{}", "\0".repeat(38)),
        bad_tag,
        wrong_prefix,
        no_prefix,
        format!("{mine}x"),
        mine[..mine.len() - 1].to_owned(),
        mine.to_uppercase(),
        format!(" {mine}"),
        format!("acme_live_{}", "é".repeat(38)),
        "_".into(),
        "lk_root_".into(),
        a.tenant.root_key.clone(),
        theirs.clone(),
    ];
    let before = snapshot(&app, a.token()).await;
    for k in &junk {
        let response = app
            .post_json("/v1/keys/verify", a.token(), &json!({"key": k}))
            .await;
        let answer = expect_json(response, 200).await;
        let shown: String = k.chars().take(40).collect();
        assert_eq!(
            answer,
            json!({"valid": false, "code": "NOT_FOUND"}),
            "{shown:?}"
        );
    }
    // Revoking by the same junk values revokes nothing and says nothing.
    // (Revocation trims pasted values, so the padded copy of the real key is left out; and a
    // root key's value is no junk there: it revokes the root key, see revoke.rs.)
    let unpadded: Vec<&String> = junk
        .iter()
        .filter(|k| k.trim() != mine && **k != a.tenant.root_key)
        .collect();
    let response = app
        .post_json("/v1/keys/revoke", a.token(), &json!({"keys": unpadded}))
        .await;
    assert_eq!(expect_json(response, 200).await, json!({"revoked": 0}));
    let after = snapshot(&app, a.token()).await;
    assert_eq!(after, before);
    assert_eq!(app.verify_code(a.token(), &mine).await, "VALID");
    assert_eq!(app.verify_code(b.token(), &theirs).await, "VALID");
    // Verify bodies of the wrong shape are problems.
    for body in [
        json!({}),
        json!({"key": 5}),
        json!({"key": null}),
        json!({"key": mine, "cost": "1"}),
        json!({"key": mine, "extra": 1}),
    ] {
        let response = app.post_json("/v1/keys/verify", a.token(), &body).await;
        assert_problem(response, 422, "invalid_body").await;
    }
}

#[tokio::test]
async fn bad_path_ids_and_queries_are_4xx() {
    let app = TestApp::spawn().await;
    let space = app.space("acme").await;
    let t = space.token();
    for path in [
        "/v1/keys/%00",
        "/v1/keys/..%2F..%2Fetc",
        "/v1/keys/'%20OR%201=1%20--",
        "/v1/keyspaces/%E2%98%83",
        "/v1/keys/019A5F0E-7C1D-7B2A-9D4E-3F2A1B0C9D8E",
    ] {
        assert_problem(app.get_as(path, t).await, 404, "not_found").await;
    }
    for query in [
        "limit=1e9",
        "limit=99999999999999999999",
        "status=ACTIVE",
        "q=%25%25%25",
    ] {
        let response = app.get_as(&format!("/v1/keys?{query}"), t).await;
        let status = response.status().as_u16();
        assert!(
            status == 200 || (400..500).contains(&status),
            "{query}: {status}"
        );
    }
    let response = app.call(Method::DELETE, "/v1/keys", Some(t), None).await;
    assert!(response.status().is_client_error());
}

#[tokio::test]
async fn control_characters_in_filters_and_selectors_are_refused_not_500() {
    // PostgreSQL text cannot hold NUL: such values must be refused before reaching the store.
    let world = TestApp::spawn().await.with_space("acme").await;
    let created = world.create_key(|k| k.owner("alice")).await;
    let (app, t, key) = (&world.app, world.token(), &created.key);
    for query in [
        "/v1/keys?keyspace_id=%00",
        "/v1/keys?owner_id=a%00b",
        "/v1/keys?q=%00",
        "/v1/keys?q=%1B",
        "/v1/audit-events?action=%00",
        "/v1/audit-events?actor=%00",
        "/v1/audit-events?target=%00",
        "/v1/audit-events?format=ndjson&target=%00",
    ] {
        let problem = assert_problem(app.get_as(query, t).await, 422, "validation_failed").await;
        assert!(problem["errors"][0]["field"].is_string(), "{query}");
    }
    for body in [
        json!({"keyspace_id": "\u{0}"}),
        json!({"keyspace_id": "x\u{0}"}),
        json!({"keyspace_id": "not-an-id"}),
    ] {
        let answer = expect_json(app.post_json("/v1/keys/revoke", t, &body).await, 200).await;
        assert_eq!(answer, json!({"revoked": 0}));
    }
    let body = json!({"owner_id": "alice\u{0}"});
    let response = app.post_json("/v1/keys/revoke", t, &body).await;
    assert_problem(response, 422, "validation_failed").await;
    let body = json!({"key": key, "keyspace_id": "\u{0}"});
    let answer = app.verify_with(t, body).await;
    assert_eq!(answer["code"], "NOT_FOUND");
    assert_eq!(
        app.verify_code(t, key).await,
        "VALID",
        "nothing was revoked"
    );
}
