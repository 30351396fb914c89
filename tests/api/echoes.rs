//! Nothing echoes what the client sent: a key pasted into the wrong place (an unknown field or
//! query parameter, an enum, a number) reaches neither the error answer nor the server's log.
//! Error details name the field and what was expected, never the value. One kind of mistake has
//! one status, and oversized bodies are problem+json (OAuth error JSON on `/oauth/*`) everywhere.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Deployment, TestApp, TestDatabase, assert_problem, backend};
use crate::nodes::Node;

/// A value of a key's shape, as a user would paste it.
fn pasted_key() -> String {
    let secret: String = "Q7wZ3kP9".chars().cycle().take(38).collect();
    format!("acme_live_{secret}")
}

struct Case {
    method: Method,
    path: String,
    content_type: &'static str,
    body: String,
    status: u16,
    code: &'static str,
    /// For `validation_failed`: the field the answer names.
    field: Option<&'static str>,
}

fn case(
    method: Method,
    path: String,
    body: Option<Value>,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        method,
        path,
        content_type: "application/json",
        body: body.map(|b| b.to_string()).unwrap_or_default(),
        status,
        code,
        field: None,
    }
}

fn query(path: String, field: Option<&'static str>) -> Case {
    Case {
        field,
        ..case(Method::GET, path, None, 422, "validation_failed")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_mistakes_never_echo_the_submitted_text() {
    let db = TestDatabase::create(backend());
    // Everything the server logs, at every level: the key must not be anywhere in it.
    let node = Node::start(&db.url(), None, &[("RUST_LOG", "debug")]).await;
    let space = Deployment::over(&node, &db).space("acme").await;
    let key = pasted_key();
    let ks = space.keyspace_id.clone();
    let post = |path: &str, body: Value, field: Option<&'static str>| Case {
        field,
        ..case(
            Method::POST,
            path.to_owned(),
            Some(body),
            422,
            "invalid_body",
        )
    };
    let cases = vec![
        post("/v1/keys", json!({"keyspace_id": ks, key.clone(): 1}), None),
        post(
            "/v1/keys",
            json!({"keyspace_id": ks, "ttl_seconds": key}),
            Some("ttl_seconds"),
        ),
        post(
            "/v1/keys",
            json!({"keyspace_id": ks, "name": "n", "enabled": key}),
            Some("enabled"),
        ),
        post(
            "/v1/keys",
            json!({"keyspace_id": ks, "ratelimit": {key.clone(): 1}}),
            Some("ratelimit"),
        ),
        post(
            "/v1/keyspaces",
            json!({"name": "n", "prefix": "zeta_live", "environment": key}),
            Some("environment"),
        ),
        post("/v1/keyspaces", json!({"prefix": key}), Some("name")),
        post(
            "/v1/keys/verify",
            json!({"key": "x", key.clone(): key}),
            None,
        ),
        post(
            "/v1/keys/verify",
            json!({"key": "x", "cost": key}),
            Some("cost"),
        ),
        query(format!("/v1/audit-events?{key}=1"), None),
        query(format!("/v1/keys?{key}=1"), None),
        query(format!("/v1/keys?status={key}"), Some("status")),
        query("/v1/keys?status=zzz".to_owned(), Some("status")),
        query(format!("/v1/keys?limit={key}"), Some("limit")),
        query("/v1/keys?limit=1000".to_owned(), Some("limit")),
        query(format!("/v1/audit-events?since={key}"), Some("since")),
        query(format!("/v1/keyspaces?{key}=1&limit=5"), None),
        Case {
            content_type: "application/x-www-form-urlencoded",
            body: format!("grant_type=client_credentials&{key}=1&{key}=2"),
            ..case(
                Method::POST,
                "/oauth/token".into(),
                None,
                400,
                "invalid_request",
            )
        },
    ];
    for case in &cases {
        let mut request = node.api.client.request(
            case.method.clone(),
            format!("{}{}", node.api.base, case.path),
        );
        if case.path.starts_with("/v1") {
            request = request.bearer_auth(space.token());
        }
        if !case.body.is_empty() {
            request = request
                .header("content-type", case.content_type)
                .body(case.body.clone());
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let what = format!("{} {}", case.method, case.path.replace(&key, "<key>"));
        assert!(
            !text.contains(&key[10..30]),
            "{what} echoed the key: {text}"
        );
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let code = body["code"].as_str().or(body["error"].as_str());
        assert_eq!(
            (status, code),
            (case.status, Some(case.code)),
            "{what}: {text}"
        );
        match case.field {
            Some(field) => assert_eq!(body["errors"][0]["field"], field, "{what}: {text}"),
            // An unknown field's name is the client's text: not repeated, not even as a name.
            None if case.code == "invalid_body" => {
                assert!(body["errors"].is_null(), "{what}: {text}")
            }
            None => {}
        }
        if body["code"].is_string() {
            let detail = body["detail"].as_str().unwrap_or_default();
            assert!(!detail.is_empty(), "{what}: {text}");
        }
    }
    let log = node.log_text();
    assert!(
        log.contains("request served"),
        "the node logged its requests"
    );
    assert!(
        !log.contains(&key[10..30]),
        "the key reached the log:\n{}",
        log.lines()
            .filter(|l| l.contains(&key[10..30]))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[tokio::test]
async fn oversized_bodies_are_413_problems_on_every_endpoint() {
    let app = TestApp::spawn_with(&[("LATCHKEY_MAX_BODY_BYTES", "1024")]).await;
    let space = app.space("acme").await;
    let big_json = json!({"keyspace_id": space.keyspace_id, "name": "x".repeat(4000)}).to_string();
    for path in ["/v1/keys", "/v1/keys/verify", "/v1/leaks"] {
        let response = app
            .post_raw(path, space.token(), "application/json", big_json.clone())
            .await;
        assert_problem(response, 413, "payload_too_large").await;
    }
    let big_form = format!("grant_type=client_credentials&scope={}", "a".repeat(4000));
    for path in [
        "/oauth/token".to_owned(),
        "/oauth/introspect".to_owned(),
        "/oauth/revoke".to_owned(),
        format!("/oauth/{}/token", space.tenant.id),
    ] {
        let response = app
            .client
            .post(app.url(&path))
            // Introspection takes a root key: the body is refused before it is looked at.
            .bearer_auth(space.token())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(big_form.clone())
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 413, "{path}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(content_type, "application/json", "{path}");
        let body: Value = response.json().await.expect("OAuth error JSON");
        assert_eq!(body["error"], "invalid_request", "{path}: {body}");
        assert!(body["error_description"].is_string(), "{path}: {body}");
    }
}
