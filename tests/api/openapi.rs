//! `/openapi.json`: OpenAPI 3.1, describing every endpoint as it answers. (scripts/lint-openapi
//! runs the validators and linters adopters use on the same document.)

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::TestApp;

async fn document(app: &TestApp) -> Value {
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Every `(path, method, operation)` of the document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            all.push((path.clone(), method.clone(), op.clone()));
        }
    }
    all
}

#[tokio::test]
async fn openapi_lists_every_v1_path_and_method() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
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
        ("/oauth/token", &["post"]),
        ("/oauth/{tenant_id}/token", &["post"]),
        ("/oauth/introspect", &["post"]),
        ("/oauth/{tenant_id}/introspect", &["post"]),
        ("/oauth/revoke", &["post"]),
        ("/oauth/{tenant_id}/revoke", &["post"]),
        ("/oauth/{tenant_id}/jwks.json", &["get"]),
        ("/healthz", &["get"]),
        ("/readyz", &["get"]),
        ("/metrics", &["get"]),
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
    for schema in [
        "CreateKey",
        "KeyView",
        "VerifyOutcome",
        "Problem",
        "OAuthError",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
}

#[tokio::test]
async fn operations_are_named_grouped_and_described() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    assert_eq!(
        doc["servers"][0]["url"], app.address,
        "servers is the public URL"
    );
    assert_eq!(doc["info"]["license"]["identifier"], "MIT OR Apache-2.0");
    assert!(doc["info"]["contact"].is_object());
    let tags: BTreeSet<&str> = doc["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    let mut ids = BTreeSet::new();
    for (path, method, op) in operations(&doc) {
        let id = op["operationId"].as_str().unwrap_or_default().to_owned();
        // `resource.action`, both camelCase words.
        let (resource, action) = id
            .split_once('.')
            .unwrap_or_else(|| panic!("{method} {path}: operationId {id:?}"));
        for word in [resource, action] {
            assert!(
                word.starts_with(|c: char| c.is_ascii_lowercase())
                    && word.chars().all(|c| c.is_ascii_alphanumeric()),
                "{method} {path}: {id}"
            );
        }
        assert!(ids.insert(id.clone()), "{id} twice");
        for field in ["summary", "description"] {
            assert!(
                op[field].as_str().is_some_and(|s| !s.is_empty()),
                "{method} {path}: no {field}"
            );
        }
        let tag = op["tags"][0].as_str().unwrap();
        assert!(
            tags.contains(tag),
            "{method} {path}: tag {tag} is not declared"
        );
    }
    for id in [
        "keys.create",
        "keys.verify",
        "keyspaces.list",
        "auditEvents.list",
    ] {
        assert!(ids.contains(id), "{id}");
    }
}

/// Follows a response's `$ref` to the shared answer.
fn resolve<'a>(doc: &'a Value, response: &'a Value) -> &'a Value {
    match response["$ref"].as_str() {
        Some(reference) => {
            let name = reference.rsplit('/').next().unwrap();
            &doc["components"]["responses"][name]
        }
        None => response,
    }
}

#[tokio::test]
async fn every_error_answer_is_described_as_a_problem() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    for (path, method, op) in operations(&doc) {
        let responses = op["responses"].as_object().unwrap();
        let documents = |status: &str| responses.contains_key(status);
        let secured = op["security"].to_string().contains("root_key");
        if path.starts_with("/v1/") && secured {
            let mut wanted = vec!["401", "403", "503"];
            if path != "/v1/keys/verify" {
                wanted.push("429");
            }
            if path.contains("{id}") {
                wanted.push("404");
            }
            if op["requestBody"].is_object() {
                wanted.extend(["400", "413", "415", "422"]);
            }
            for status in wanted {
                assert!(
                    documents(status),
                    "{method} {path} does not document {status}"
                );
            }
        }
        for (status, answer) in responses {
            let response = resolve(&doc, answer);
            if path.starts_with("/v1/") && status.starts_with(['4', '5']) {
                assert_eq!(
                    response["content"]["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{method} {path} {status}"
                );
                assert!(response["content"]["application/json"].is_null());
            }
            // Once the caller is known, a management answer says where its quota stands
            // (described on each operation's own answers and on the shared 429).
            let management = secured && !op["security"].to_string().contains("keys:verify");
            let own = answer["$ref"].is_null() && !["401", "403"].contains(&status.as_str());
            if management && (own || status == "429") {
                for header in ["RateLimit", "RateLimit-Policy"] {
                    assert!(
                        response["headers"][header].is_object(),
                        "{method} {path} {status}: {header}"
                    );
                }
            }
            if status == "429" || status == "503" {
                assert!(
                    response["headers"]["Retry-After"].is_object(),
                    "{method} {path}"
                );
            }
        }
    }
    // The problem's `code` is one of the stable codes, all of them.
    let codes: Vec<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let stable: Vec<&str> = latchkey::domain::error_code::ErrorCode::ALL
        .iter()
        .map(|c| c.as_str())
        .collect();
    assert_eq!(codes, stable);
    let created = &doc["paths"]["/v1/keys"]["post"]["responses"]["201"];
    assert!(created["headers"]["Location"].is_object());
    let export = &doc["paths"]["/v1/audit-events"]["get"]["responses"]["200"]["content"];
    assert!(export["application/x-ndjson"].is_object(), "{export}");
}

#[tokio::test]
async fn schemas_say_what_is_always_there_and_what_it_is() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let schemas = &doc["components"]["schemas"];
    // A page refers to its item's schema: one type per resource in generated clients.
    for (page, item) in [
        ("Page_KeyView", "KeyView"),
        ("Page_KeyspaceView", "KeyspaceView"),
        ("Page_RootKeyView", "RootKeyView"),
        ("Page_AuditEventView", "AuditEventView"),
    ] {
        let items = &schemas[page]["properties"]["data"]["items"];
        assert_eq!(
            items["$ref"],
            format!("#/components/schemas/{item}"),
            "{page}"
        );
    }
    // Every field the server always writes is required (nullable ones too).
    let key = &schemas["KeyView"];
    let required: BTreeSet<&str> = key["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    let properties: BTreeSet<&str> = key["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(required, properties);
    assert_eq!(key["properties"]["id"]["format"], "uuid");
    assert_eq!(key["properties"]["created_at"]["format"], "date-time");
    // `meta` holds any JSON values.
    assert_eq!(key["properties"]["meta"]["type"], "object");
    assert_eq!(
        key["properties"]["meta"]["additionalProperties"],
        serde_json::json!({})
    );
    // Usage totals are keyed by verify code.
    let totals = &schemas["KeyUsage"]["properties"]["totals"];
    assert!(
        totals["propertyNames"]["enum"]
            .as_array()
            .unwrap()
            .contains(&Value::from("RATE_LIMITED"))
    );
    // Closed sets are enums.
    assert!(schemas["ActorType"]["enum"].is_array());
    assert!(schemas["RefillInterval"]["enum"].is_array());
    assert!(schemas["Environment"]["enum"].is_array());
}

/// The description and the routes cannot drift apart: every described operation is routed
/// (asked without credentials or body, it answers a status it documents, never "no route" or
/// a 405), and the document is the same bytes every time.
#[tokio::test]
async fn every_described_operation_answers_as_described() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let tenant = uuid::Uuid::now_v7().to_string();
    let id = uuid::Uuid::now_v7().to_string();
    for (path, method, op) in operations(&doc) {
        let url = path.replace("{tenant_id}", &tenant).replace("{id}", &id);
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let response = app.call(method.clone(), &url, None, None).await;
        let status = response.status().as_u16().to_string();
        assert!(
            op["responses"].get(&status).is_some(),
            "{method} {path} answered {status}, which it does not document"
        );
    }
    let again = app.get("/openapi.json").await.text().await.unwrap();
    assert_eq!(again, app.get("/openapi.json").await.text().await.unwrap());
}

/// The named schemas `value` refers to, and the ones those refer to.
fn referred(doc: &Value, value: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(name) = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
                && found.insert(name.to_owned())
            {
                referred(doc, &doc["components"]["schemas"][name], found);
            }
            map.values().for_each(|v| referred(doc, v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| referred(doc, v, found)),
        _ => {}
    }
}

fn nullable(schema: &Value) -> bool {
    let null = Value::from("null");
    schema["type"].as_array().is_some_and(|t| t.contains(&null))
        || ["oneOf", "anyOf"].iter().any(|of| {
            schema[*of]
                .as_array()
                .is_some_and(|items| items.iter().any(|s| s["type"] == null))
        })
}

/// What openapi-typescript and openapi-python-client make of the description (scripts/
/// generated-clients runs them): one type for one value, as the server really sends it.
#[tokio::test]
async fn generated_clients_get_the_types_the_server_answers_with() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let schemas = &doc["components"]["schemas"];
    let (mut answers, mut bodies) = (BTreeSet::new(), BTreeSet::new());
    for (path, method, op) in operations(&doc) {
        if path.starts_with("/v1/") {
            referred(&doc, &op["responses"], &mut answers);
        }
        referred(&doc, &op["requestBody"], &mut bodies);
        // An id in a path is a UUID, as the resource's own `id` is: a client passes one
        // where it got the other (another string is a 404).
        for parameter in op["parameters"].as_array().into_iter().flatten() {
            if parameter["in"] == "path" {
                assert_eq!(
                    parameter["schema"]["format"], "uuid",
                    "{method} {path}: {parameter}"
                );
            }
        }
    }
    for name in answers.difference(&bodies) {
        // The schema itself, or each part of an `allOf` (a struct with a flattened view).
        let schema = &schemas[name.as_str()];
        let parts = std::iter::once(schema).chain(schema["allOf"].as_array().into_iter().flatten());
        for part in parts {
            let required: Vec<&Value> = part["required"].as_array().into_iter().flatten().collect();
            for (field, property) in part["properties"].as_object().into_iter().flatten() {
                // A field the server always writes is required; one it leaves out when it does
                // not apply is never `null` too (clients would type it `T | None | Unset`).
                assert!(
                    required.contains(&&Value::from(field.as_str())) || !nullable(property),
                    "{name}.{field} is optional and nullable"
                );
            }
        }
    }
    for (name, schema) in schemas.as_object().unwrap() {
        for (field, property) in schema["properties"].as_object().into_iter().flatten() {
            // An object without named fields says what its values are (`{}`: any JSON value,
            // as in `meta`); without `additionalProperties` generators type it as empty.
            let object = property["type"] == "object"
                || property["type"]
                    .as_array()
                    .is_some_and(|t| t.contains(&Value::from("object")));
            if object && property["properties"].is_null() {
                assert!(
                    property["additionalProperties"].is_object(),
                    "{name}.{field}"
                );
            }
        }
    }
    // A verification names the key by the same UUID its id has everywhere else.
    let outcome = &schemas["VerifyOutcome"]["properties"];
    assert_eq!(outcome["key_id"]["format"], "uuid");
    assert_eq!(
        outcome["meta"]["additionalProperties"],
        serde_json::json!({})
    );
    assert_eq!(
        schemas["CreateKey"]["properties"]["keyspace_id"]["format"],
        "uuid"
    );
    // Scopes in a body are described as the server checks them.
    for (name, field) in [
        ("CreateKey", "scopes"),
        ("UpdateKey", "scopes"),
        ("CreateKeyspace", "default_scopes"),
        ("UpdateKeyspace", "default_scopes"),
        ("CreateRootKey", "scopes"),
        ("VerifyBody", "scopes"),
    ] {
        assert_eq!(
            schemas[name]["properties"][field]["items"]["$ref"], "#/components/schemas/Scope",
            "{name}.{field}"
        );
    }
    // A body the server does without is optional (left out, not `null`), and a bound it checks
    // is described.
    for (path, name) in [
        ("/v1/keys/{id}/rotate", "RotateBody"),
        ("/v1/keys/{id}/revoke", "RevokeBody"),
        (
            "/v1/webhook-endpoints/{id}/rotate-secret",
            "RotateWebhookSecret",
        ),
    ] {
        let body = &doc["paths"][path]["post"]["requestBody"];
        assert_ne!(body["required"], true, "{path}");
        assert_eq!(
            body["content"]["application/json"]["schema"]["$ref"],
            format!("#/components/schemas/{name}"),
            "{path}"
        );
    }
    let grace = &schemas["RotateBody"]["properties"]["grace_period_seconds"];
    assert_eq!(grace["minimum"], 0);
    assert_eq!(grace["maximum"], latchkey::manage::keys::MAX_GRACE_SECONDS);
    // Webhook views: always-written fields required, events as their enum.
    let endpoint = &schemas["WebhookEndpointView"];
    assert!(
        endpoint["required"]
            .as_array()
            .unwrap()
            .contains(&Value::from("disabled_reason"))
    );
    assert_eq!(
        endpoint["properties"]["events"]["items"]["$ref"],
        "#/components/schemas/WebhookEventType"
    );
}
