//! `/openapi.json`: OpenAPI 3.1, describing every /v1 endpoint.

use crate::helpers::TestApp;

#[tokio::test]
async fn openapi_lists_every_v1_path_and_method() {
    let app = TestApp::spawn().await;
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), 200);
    let doc: serde_json::Value = response.json().await.unwrap();
    let version = doc["openapi"].as_str().unwrap();
    assert!(version.starts_with("3.1"), "{version}");
    let expected: &[(&str, &[&str])] = &[
        ("/v1/keyspaces", &["get", "post"]),
        ("/v1/keyspaces/{id}", &["get", "patch"]),
        ("/v1/keys", &["get", "post"]),
        ("/v1/keys/{id}", &["get", "patch"]),
        ("/v1/keys/{id}/rotate", &["post"]),
        ("/v1/keys/{id}/revoke", &["post"]),
        ("/v1/keys/revoke", &["post"]),
        ("/v1/keys/verify", &["post"]),
        ("/v1/root-keys", &["get", "post"]),
        ("/v1/root-keys/{id}/revoke", &["post"]),
        ("/v1/audit-events", &["get"]),
    ];
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in expected {
        let item = paths
            .get(*path)
            .unwrap_or_else(|| panic!("{path} is missing"));
        for method in *methods {
            let op = &item[*method];
            assert!(op.is_object(), "{method} {path} is missing");
            assert!(op["responses"].is_object());
            assert!(op["security"].is_array(), "{method} {path} names its scope");
        }
    }
    assert!(doc["components"]["securitySchemes"]["root_key"].is_object());
    for schema in ["CreateKey", "KeyView", "VerifyOutcome", "ProblemDoc"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
}
