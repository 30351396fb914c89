//! Key roles and permission queries: a key's effective scopes are its own plus its roles';
//! changing or deleting a role changes its holders' verification at once; `scope_query` asks
//! `AND`/`OR` questions and names what the first failing branch lacks; bad input is a 422 that
//! names the field; every change is audited; roles count at `/oauth/token` too.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, expect_json, s};

/// Creates a role through the API and answers its body.
async fn create_role(app: &TestApp, token: &str, name: &str, scopes: &[&str]) -> Value {
    let response = app
        .post_json("/v1/roles", token, &json!({"name": name, "scopes": scopes}))
        .await;
    let location = response
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    let role = expect_json(response, 201).await;
    assert_eq!(location, Some(format!("/v1/roles/{}", s(&role, "id"))));
    role
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_key_holds_its_roles_scopes_and_a_role_change_reaches_it_at_once() {
    let app = TestApp::spawn().await;
    let a = app.space("acme").await;
    let token = a.token();
    let billing = create_role(&app, token, "billing-reader", &["billing:read"]).await;
    let role_id = s(&billing, "id");
    assert_eq!(billing["name"], "billing-reader");
    assert_eq!(strings(&billing["scopes"]), ["billing:read"]);
    assert_eq!(
        app.get_ok(&format!("/v1/roles/{role_id}"), token).await,
        billing
    );
    let listed = app.get_ok("/v1/roles", token).await;
    assert_eq!(listed["data"], json!([billing]));

    // By name or by id, once each.
    let key = app
        .create_key(&a, |k| {
            k.scopes(["orders:read"])
                .set("roles", json!(["billing-reader", role_id]))
        })
        .await;
    assert_eq!(
        key["roles"],
        json!([{"id": role_id, "name": "billing-reader"}])
    );
    assert_eq!(strings(&key["scopes"]), ["orders:read"], "its own scopes");
    assert_eq!(app.get_key(token, &key.id).await["roles"], key["roles"]);
    let listed = app.get_ok("/v1/keys", token).await;
    assert_eq!(listed["data"][0]["roles"], key["roles"]);

    let answer = app
        .verify_with(
            token,
            json!({"key": key.key, "scopes": ["orders:read", "billing:read"]}),
        )
        .await;
    assert_eq!(answer["code"], "VALID", "{answer}");
    assert_eq!(strings(&answer["scopes"]), ["billing:read", "orders:read"]);
    assert_eq!(strings(&answer["roles"]), ["billing-reader"]);

    // Changing the role's scopes changes what the (cached) key grants, with no wait.
    let path = format!("/v1/roles/{role_id}");
    let changed = expect_json(
        app.patch_json(&path, token, &json!({"scopes": ["invoices:read"]}))
            .await,
        200,
    )
    .await;
    assert_eq!(strings(&changed["scopes"]), ["invoices:read"]);
    let answer = app
        .verify_with(token, json!({"key": key.key, "scopes": ["billing:read"]}))
        .await;
    assert_eq!(
        (&answer["code"], &answer["missing_scopes"]),
        (&json!("INSUFFICIENT_SCOPE"), &json!(["billing:read"]))
    );
    let answer = app
        .verify_with(token, json!({"key": key.key, "scopes": ["invoices:read"]}))
        .await;
    assert_eq!(answer["code"], "VALID");

    // A role in use is not deleted unless forced; forced, its holders lose it at once.
    let problem = assert_problem(app.delete_as(&path, token).await, 409, "role_in_use").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("held by 1 key")
    );
    let response = app.delete_as(&format!("{path}?force=true"), token).await;
    assert_eq!(response.status(), 204);
    assert_problem(app.get_as(&path, token).await, 404, "not_found").await;
    let answer = app
        .verify_with(token, json!({"key": key.key, "scopes": ["invoices:read"]}))
        .await;
    assert_eq!(answer["code"], "INSUFFICIENT_SCOPE");
    assert_eq!(app.get_key(token, &key.id).await["roles"], json!([]));

    // Renaming keeps names unique; a role nobody holds is deleted without force.
    let one = create_role(&app, token, "one", &[]).await;
    create_role(&app, token, "two", &["x:y"]).await;
    let response = app
        .post_json("/v1/roles", token, &json!({"name": "one", "scopes": []}))
        .await;
    assert_problem(response, 409, "role_name_taken").await;
    let one_path = format!("/v1/roles/{}", s(&one, "id"));
    let response = app
        .patch_json(&one_path, token, &json!({"name": "two"}))
        .await;
    assert_problem(response, 409, "role_name_taken").await;
    let renamed = expect_json(
        app.patch_json(&one_path, token, &json!({"name": "uno"}))
            .await,
        200,
    )
    .await;
    assert_eq!(renamed["name"], "uno");
    assert_eq!(app.delete_as(&one_path, token).await.status(), 204);
}

#[tokio::test]
async fn roles_are_set_and_cleared_by_key_updates_and_kept_by_rotation() {
    let app = TestApp::spawn().await;
    let a = app.space("acme").await;
    let token = a.token();
    let reader = create_role(&app, token, "reader", &["docs:read"]).await;
    let writer = create_role(&app, token, "writer", &["docs:write"]).await;
    let key = app.create_key(&a, |k| k.scopes(["a:b"])).await;
    assert_eq!(key["roles"], json!([]));
    let needs = |scopes: Value| json!({"key": key.key, "scopes": scopes});
    assert_eq!(
        app.verify_with(token, needs(json!(["docs:read"]))).await["code"],
        "INSUFFICIENT_SCOPE"
    );

    let updated = app
        .patch_key(token, &key.id, json!({"roles": ["writer", "reader"]}))
        .await;
    let names: Vec<&str> = updated["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["reader", "writer"]);
    let answer = app
        .verify_with(token, needs(json!(["docs:read", "docs:write", "a:b"])))
        .await;
    assert_eq!(answer["code"], "VALID", "{answer}");

    // Rotation carries the roles over to the new key.
    let rotated = app.rotate(token, &key.id, 60).await;
    assert_eq!(rotated["roles"], updated["roles"]);
    let answer = app
        .verify_with(
            token,
            json!({"key": rotated.key, "scopes": ["docs:read", "docs:write"]}),
        )
        .await;
    assert_eq!(answer["code"], "VALID", "{answer}");

    let cleared = app.patch_key(token, &key.id, json!({"roles": []})).await;
    assert_eq!(cleared["roles"], json!([]));
    assert_eq!(
        app.verify_with(token, needs(json!(["docs:read"]))).await["code"],
        "INSUFFICIENT_SCOPE"
    );

    // The audit log names the roles a key was given, and each change to a role.
    let updates = app
        .audit(token, &format!("action=key.update&target={}", key.id))
        .await;
    assert_eq!(updates.len(), 2, "{updates:?}");
    assert_eq!(updates[0]["changes"]["roles"], json!([]));
    assert_eq!(updates[1]["changes"]["roles"], json!(["reader", "writer"]));
    let path = format!("/v1/roles/{}", s(&reader, "id"));
    app.patch_json(&path, token, &json!({"scopes": ["docs:list"]}))
        .await;
    // The rotated key still holds `writer`.
    let forced = format!("/v1/roles/{}?force=true", s(&writer, "id"));
    assert_eq!(app.delete_as(&forced, token).await.status(), 204);
    for (action, id, changes) in [
        (
            "role.create",
            s(&reader, "id"),
            json!({"name": "reader", "scopes": ["docs:read"]}),
        ),
        (
            "role.update",
            s(&reader, "id"),
            json!({"scopes": ["docs:list"]}),
        ),
        (
            "role.delete",
            s(&writer, "id"),
            json!({"name": "writer", "detached_keys": 1}),
        ),
    ] {
        let events = app
            .audit(token, &format!("action={action}&target={id}"))
            .await;
        assert_eq!(events.len(), 1, "{action}: {events:?}");
        assert_eq!(events[0]["target"], json!({"type": "role", "id": id}));
        assert_eq!(events[0]["actor"]["id"], a.tenant.root_key_id);
        assert_eq!(events[0]["changes"], changes, "{action}");
    }
}

#[tokio::test]
async fn a_scope_query_needs_its_and_and_or_and_names_what_the_first_failing_branch_lacks() {
    let app = TestApp::spawn().await;
    let a = app.space("acme").await;
    let token = a.token();
    create_role(&app, token, "admin", &["admin:*"]).await;
    let key = app.create_key(&a, |k| k.scopes(["orders:read"])).await;
    let admin = app
        .create_key(&a, |k| {
            k.scopes(["orders:read"]).set("roles", json!(["admin"]))
        })
        .await;
    let query = |key: &str, q: &str| json!({"key": key, "scope_query": q});
    let q = "orders:read AND (billing:read OR admin:*)";

    let answer = app.verify_with(token, query(&admin.key, q)).await;
    assert_eq!(answer["code"], "VALID", "{answer}");
    assert!(answer.get("missing_scopes").is_none());
    let answer = app.verify_with(token, query(&key.key, q)).await;
    assert_eq!(answer["code"], "INSUFFICIENT_SCOPE");
    assert_eq!(answer["valid"], false);
    assert_eq!(answer["missing_scopes"], json!(["billing:read"]));
    assert!(answer.get("scopes").is_none(), "a refusal shows no scopes");
    let answer = app
        .verify_with(token, query(&key.key, "billing:read OR orders:read"))
        .await;
    assert_eq!(answer["code"], "VALID");
    let answer = app
        .verify_with(token, query(&key.key, "(a:b AND c:d) OR e:f"))
        .await;
    assert_eq!(answer["missing_scopes"], json!(["a:b", "c:d"]));
    // Plain `scopes` name every missing one too.
    let answer = app
        .verify_with(
            token,
            json!({"key": key.key, "scopes": ["orders:read", "x:y", "a:b"]}),
        )
        .await;
    assert_eq!(answer["missing_scopes"], json!(["a:b", "x:y"]));

    // Bad queries are 422s that name the field and never echo it.
    let deep = format!("{}a:b{}", "(".repeat(21), ")".repeat(21));
    let long = vec!["a:b"; 260].join(" OR ");
    for bad in [
        json!({"key": key.key, "scope_query": "orders:read AND"}),
        json!({"key": key.key, "scope_query": "orders:READ"}),
        json!({"key": key.key, "scope_query": ""}),
        json!({"key": key.key, "scope_query": deep}),
        json!({"key": key.key, "scope_query": long}),
        json!({"key": key.key, "scope_query": "a:b", "scopes": ["a:b"]}),
    ] {
        let response = app.post_json("/v1/keys/verify", token, &bad).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], "scope_query", "{bad}");
        assert!(!problem.to_string().contains("orders:READ"));
    }
}

#[tokio::test]
async fn role_input_is_checked_and_named() {
    let app = TestApp::spawn().await;
    let a = app.space("acme").await;
    let token = a.token();
    let id_like = uuid_like();
    let many_scopes: Vec<String> = (0..65).map(|i| format!("r{i}:a")).collect();
    for (body, field) in [
        (json!({"name": "", "scopes": []}), "name"),
        (json!({"name": "has space", "scopes": []}), "name"),
        (json!({"name": "a".repeat(65), "scopes": []}), "name"),
        (json!({"name": id_like, "scopes": []}), "name"),
        (json!({"name": "ok", "scopes": ["Bad"]}), "scopes"),
        (json!({"name": "ok", "scopes": many_scopes}), "scopes"),
    ] {
        let response = app.post_json("/v1/roles", token, &body).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
    }
    let response = app
        .post_json("/v1/roles", token, &json!({"name": "ok"}))
        .await;
    assert_eq!(response.status(), 422, "scopes are required");

    // Unknown roles, malformed ones and too many are the key's `roles` field.
    let too_many: Vec<String> = (0..17).map(|i| format!("r{i}")).collect();
    for roles in [json!(["nope"]), json!(["bad name"]), json!(too_many)] {
        let body = json!({"keyspace_id": a.keyspace_id, "roles": roles});
        let response = app.post_json("/v1/keys", token, &body).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], "roles", "{roles}");
    }
    let key = app.create_key(&a, |k| k).await;
    let response = app
        .patch_json(
            &format!("/v1/keys/{}", key.id),
            token,
            &json!({"roles": [uuid_like()]}),
        )
        .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "roles");
    assert_eq!(
        app.get_ok("/v1/keys", token).await["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // An array is no body of this API, even one that lines up with the fields (it was taken as
    // `{"name": null, "scopes": null}` before).
    let role = create_role(&app, token, "kept", &["a:b"]).await;
    let path = format!("/v1/roles/{}", s(&role, "id"));
    let response = app.patch_json(&path, token, &json!([null, null])).await;
    assert_problem(response, 422, "invalid_body").await;
    let response = app
        .patch_json(&path, token, &json!(["renamed", ["x:y"]]))
        .await;
    assert_problem(response, 422, "invalid_body").await;
    assert_eq!(app.get_ok(&path, token).await, role);

    let response = app
        .patch_json(&format!("/v1/roles/{}", uuid_like()), token, &json!({}))
        .await;
    assert_problem(response, 404, "not_found").await;
    assert_problem(
        app.get_as("/v1/roles/not-an-id", token).await,
        404,
        "not_found",
    )
    .await;
}

/// A fresh canonical UUID, which names no role.
fn uuid_like() -> String {
    latchkey::domain::ids::new_id()
}

#[tokio::test]
async fn roles_need_their_scopes_and_a_new_tenants_root_key_holds_them() {
    let app = TestApp::spawn().await;
    let a = app.space("acme").await;
    let token = a.token();
    let role = create_role(&app, token, "reader", &["docs:read"]).await;
    let path = format!("/v1/roles/{}", s(&role, "id"));
    let reader = app.create_root_key(token, &["roles:read"]).await;
    let reader = s(&reader, "key");
    assert_eq!(app.get_as(&path, &reader).await.status(), 200);
    assert_eq!(app.get_as("/v1/roles", &reader).await.status(), 200);
    let body = json!({"name": "x", "scopes": []});
    let response = app.post_json("/v1/roles", &reader, &body).await;
    assert_problem(response, 403, "forbidden").await;
    let response = app.patch_json(&path, &reader, &json!({"name": "y"})).await;
    assert_problem(response, 403, "forbidden").await;
    assert_problem(app.delete_as(&path, &reader).await, 403, "forbidden").await;
    let other = app.create_root_key(token, &["keys:read"]).await;
    assert_problem(app.get_as(&path, &s(&other, "key")).await, 403, "forbidden").await;
    let writer = app.create_root_key(token, &["roles:write"]).await;
    let response = app.post_json("/v1/roles", &s(&writer, "key"), &body).await;
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn an_access_token_carries_role_scopes_and_loses_them_with_the_role() {
    let app = TestApp::spawn().await;
    let a = app.space("acme").await;
    let token = a.token();
    let role = create_role(&app, token, "reader", &["docs:read"]).await;
    let client = app
        .create_key(&a, |k| {
            k.scopes(["own:read"]).set("roles", json!(["reader"]))
        })
        .await;
    // Without `scope`, the token gets every effective scope; with it, a role scope may be asked.
    let response = app
        .token_request(&client, &[("grant_type", "client_credentials")])
        .await;
    let granted = expect_json(response, 200).await;
    assert_eq!(granted["scope"], "docs:read own:read");
    let narrowed = app.access_token(&client, Some("docs:read")).await;
    let needs = |t: &str| json!({"key": t, "scopes": ["docs:read"]});
    assert_eq!(
        app.verify_with(token, needs(&narrowed)).await["code"],
        "VALID"
    );

    // The role loses the scope: so does the token, at once.
    let path = format!("/v1/roles/{}", s(&role, "id"));
    app.patch_json(&path, token, &json!({"scopes": ["docs:list"]}))
        .await;
    let answer = app.verify_with(token, needs(&narrowed)).await;
    assert_eq!(answer["code"], "INSUFFICIENT_SCOPE", "{answer}");
    let response = app
        .token_request(
            &client,
            &[("grant_type", "client_credentials"), ("scope", "docs:read")],
        )
        .await;
    assert_eq!(response.status(), 400);
}
