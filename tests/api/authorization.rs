//! Function-level authorization: each endpoint needs its scope (403 otherwise), and a missing,
//! malformed, revoked or expired root key is 401 with `WWW-Authenticate`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestKey, World, assert_problem, s};

const ALL_SCOPES: &[&str] = &[
    "keys:create",
    "keys:read",
    "keys:update",
    "keys:rotate",
    "keys:revoke",
    "keys:verify",
    "keyspaces:create",
    "keyspaces:read",
    "keyspaces:update",
    "audit:read",
    "root_keys:create",
    "root_keys:read",
    "root_keys:revoke",
];

/// An endpoint: method, path, a valid body (or null) and the scope it needs.
type Endpoint = (Method, String, Value, &'static str);

/// Every endpoint of the API with a valid body and the scope it needs.
fn endpoints(keyspace_id: &str, key_id: &str, root_key_id: &str) -> Vec<Endpoint> {
    vec![
        (
            Method::POST,
            "/v1/keyspaces".into(),
            json!({"name": "n", "prefix": "zz_new"}),
            "keyspaces:create",
        ),
        (
            Method::GET,
            "/v1/keyspaces".into(),
            Value::Null,
            "keyspaces:read",
        ),
        (
            Method::GET,
            format!("/v1/keyspaces/{keyspace_id}"),
            Value::Null,
            "keyspaces:read",
        ),
        (
            Method::PATCH,
            format!("/v1/keyspaces/{keyspace_id}"),
            json!({"name": "x"}),
            "keyspaces:update",
        ),
        (
            Method::POST,
            "/v1/keys".into(),
            json!({"keyspace_id": keyspace_id}),
            "keys:create",
        ),
        (Method::GET, "/v1/keys".into(), Value::Null, "keys:read"),
        (
            Method::GET,
            format!("/v1/keys/{key_id}"),
            Value::Null,
            "keys:read",
        ),
        (
            Method::PATCH,
            format!("/v1/keys/{key_id}"),
            json!({"name": "x"}),
            "keys:update",
        ),
        (
            Method::POST,
            format!("/v1/keys/{key_id}/rotate"),
            json!({"grace_period_seconds": 60}),
            "keys:rotate",
        ),
        (
            Method::POST,
            format!("/v1/keys/{key_id}/revoke"),
            json!({}),
            "keys:revoke",
        ),
        (
            Method::POST,
            "/v1/keys/revoke".into(),
            json!({"ids": [key_id]}),
            "keys:revoke",
        ),
        (
            Method::POST,
            "/v1/keys/verify".into(),
            json!({"key": "x"}),
            "keys:verify",
        ),
        (
            Method::GET,
            "/v1/audit-events".into(),
            Value::Null,
            "audit:read",
        ),
        (
            Method::POST,
            "/v1/root-keys".into(),
            json!({"name": "n", "scopes": ["root_keys:create"]}),
            "root_keys:create",
        ),
        (
            Method::GET,
            "/v1/root-keys".into(),
            Value::Null,
            "root_keys:read",
        ),
        (
            Method::POST,
            format!("/v1/root-keys/{root_key_id}/revoke"),
            json!({}),
            "root_keys:revoke",
        ),
    ]
}

/// A tenant with a key, and every endpoint of the API over it and another root key.
async fn world_and_its_endpoints() -> (World, TestKey, Vec<Endpoint>) {
    let world = TestApp::spawn().await.with_space("acme").await;
    let key = world.create_key(|k| k).await;
    let victim = world
        .app
        .create_root_key(world.token(), &["keys:read"])
        .await;
    let endpoints = endpoints(&world.space().keyspace_id, &key.id, &s(&victim, "id"));
    (world, key, endpoints)
}

#[tokio::test]
async fn every_endpoint_refuses_a_root_key_without_its_scope() {
    let (world, key, endpoints) = world_and_its_endpoints().await;
    let (app, space) = (&world.app, world.space());
    let before_keys = app.get_ok("/v1/keys", space.token()).await;
    let before_audit = app.audit(space.token(), "").await.len();
    for (method, path, body, scope) in endpoints {
        let others: Vec<&str> = ALL_SCOPES.iter().copied().filter(|s| *s != scope).collect();
        let lacking = s(&app.create_root_key(space.token(), &others).await, "key");
        let body = (!body.is_null()).then_some(&body);
        let response = app.call(method.clone(), &path, Some(&lacking), body).await;
        let problem = assert_problem(response, 403, "forbidden").await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(scope), "{method} {path}: {problem}");
    }
    // Nothing changed, apart from the root keys this test made.
    assert_eq!(app.get_ok("/v1/keys", space.token()).await, before_keys);
    let events = app.audit(space.token(), "").await;
    let new = &events[..events.len() - before_audit];
    assert!(new.iter().all(|e| e["action"] == "root_key.create"));
    assert_eq!(app.verify_code(space.token(), &key.key).await, "VALID");
}

#[tokio::test]
async fn a_root_key_with_only_the_needed_scope_is_let_through() {
    let (world, _, endpoints) = world_and_its_endpoints().await;
    let (app, space) = (&world.app, world.space());
    for (method, path, body, scope) in endpoints {
        let only = s(&app.create_root_key(space.token(), &[scope]).await, "key");
        let body = (!body.is_null()).then_some(&body);
        let response = app.call(method.clone(), &path, Some(&only), body).await;
        let status = response.status();
        assert!(
            status.is_success(),
            "{method} {path} with {scope}: {status}"
        );
    }
}

#[tokio::test]
async fn missing_malformed_revoked_or_expired_root_keys_are_401() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let key = world.create_key(|k| k).await;
    let (app, space) = (&world.app, world.space());
    let revoked = app.create_root_key(space.token(), ALL_SCOPES).await;
    let path = format!("/v1/root-keys/{}/revoke", s(&revoked, "id"));
    let response = app.post_json(&path, space.token(), &json!({})).await;
    assert_eq!(response.status(), 200);
    let expiring = app.create_root_key(space.token(), ALL_SCOPES).await;
    {
        use diesel::{ExpressionMethods, QueryDsl, RunQueryDsl};
        use latchkey::store::schema::root_keys;
        let mut conn = app.store.conn().unwrap();
        let past = chrono::Utc::now().naive_utc() - chrono::TimeDelta::seconds(1);
        diesel::update(root_keys::table.filter(root_keys::id.eq(s(&expiring, "id"))))
            .set(root_keys::expires_at.eq(Some(past)))
            .execute(&mut *conn)
            .unwrap();
    }
    let mut forged = space.tenant.root_key.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'a' { 'b' } else { 'a' });
    let other_deployment = "lk_root_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let headers: Vec<Option<String>> = vec![
        None,
        Some(String::new()),
        Some("Bearer".into()),
        Some("Bearer ".into()),
        Some("Bearer garbage".into()),
        Some(format!("Basic {}", space.tenant.root_key)),
        Some(format!("Bearer {forged}")),
        Some(format!("Bearer {other_deployment}")),
        Some(format!("Bearer {}", key.key)),
        Some(format!("Bearer {}", s(&revoked, "key"))),
        Some(format!("Bearer {}", s(&expiring, "key"))),
        Some(format!("Bearer {}", "x".repeat(10_000))),
    ];
    let endpoints = endpoints(&space.keyspace_id, &key.id, &s(&revoked, "id"));
    for (method, path, body, _) in endpoints {
        for header in &headers {
            let mut request = app.client.request(method.clone(), app.url(&path));
            if let Some(h) = header {
                request = request.header("authorization", h);
            }
            if !body.is_null() {
                request = request.json(&body);
            }
            let response = request.send().await.unwrap();
            let challenge = response.headers().get("www-authenticate").cloned();
            // RFC 6750 §3: a bearer token that is not valid is `invalid_token`; a request
            // with none gets the bare challenge.
            let sent_token = header.as_deref().is_some_and(|h| {
                h.strip_prefix("Bearer ")
                    .is_some_and(|token| !token.trim().is_empty())
            });
            let expected = if sent_token {
                "Bearer realm=\"latchkey\", error=\"invalid_token\""
            } else {
                "Bearer realm=\"latchkey\""
            };
            assert_eq!(
                challenge.as_ref().and_then(|v| v.to_str().ok()),
                Some(expected),
                "{method} {path} with {:?}",
                header.as_deref().map(|h| &h[..h.len().min(20)])
            );
            let problem = assert_problem(response, 401, "unauthorized").await;
            assert!(!problem.to_string().contains(&space.tenant.root_key));
        }
    }
    // Nothing happened to the tenant's keys.
    assert_eq!(app.verify_code(space.token(), &key.key).await, "VALID");
    let keyspaces = app.get_ok("/v1/keyspaces", space.token()).await;
    assert_eq!(keyspaces["data"].as_array().unwrap().len(), 1);
}
