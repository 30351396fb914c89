//! Liveness, readiness, request ids and the shape of errors for unknown routes.

use crate::helpers::{TestApp, assert_problem};

#[tokio::test]
async fn healthz_is_alive() {
    let app = TestApp::spawn().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), 200);
    let request_id = response.headers().get("x-request-id").cloned();
    assert!(request_id.is_some(), "every answer carries a request id");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn readyz_checks_the_store() {
    let app = TestApp::spawn().await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["store"], "ok");
}

#[tokio::test]
async fn unknown_route_is_problem_json_with_request_id() {
    let app = TestApp::spawn().await;
    let response = app.get("/no/such/route?key=lk_root_abc").await;
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = assert_problem(response, 404, "not_found").await;
    assert_eq!(body["request_id"], request_id);
    assert!(
        !body.to_string().contains("lk_root_abc"),
        "an error never echoes the URL"
    );
}

#[tokio::test]
async fn oversized_body_is_refused_with_413() {
    let app = TestApp::spawn_with(&[("LATCHKEY_MAX_BODY_BYTES", "2048")]).await;
    // No JSON route exists yet that accepts a body for everyone; the default route still
    // answers 404 without reading a huge body into memory.
    let response = app
        .client
        .post(app.url("/healthz"))
        .body(vec![b'x'; 1 << 20])
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error());
}
