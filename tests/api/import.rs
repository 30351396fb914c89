//! `POST /v1/keys/import` (issue 19 §3): keys minted and hashed by another system verify as
//! they are, an imported SHA-256 digest is rewritten to latchkey's digest at the first
//! verification, and each item is answered imported, duplicate or invalid.

use std::process::Command;

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, expect_json, s};

/// A key minted as Unkey does (`prefix_` + base58 of 16 random bytes) and its digest as Unkey
/// stores it (`base64(sha256(key))`) and as crates.io or GitLab would (hex), by Python's
/// `hashlib`, not by latchkey.
fn foreign_key(prefix: &str) -> (String, String, String) {
    let script = r#"
import base64, hashlib, secrets, sys
alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
n = int.from_bytes(secrets.token_bytes(16), "big")
body = ""
while n:
    n, r = divmod(n, 58)
    body = alphabet[r] + body
key = sys.argv[1] + "_" + body
digest = hashlib.sha256(key.encode()).digest()
print(key, base64.b64encode(digest).decode(), digest.hex())
"#;
    let out = Command::new("python3")
        .args(["-c", script, prefix])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8(out.stdout).unwrap();
    let mut parts = line.split_whitespace().map(str::to_owned);
    (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    )
}

/// The digest column of key `id`, and what it holds.
fn stored_digest(app: &TestApp, id: &str) -> (Vec<u8>, String) {
    use diesel::prelude::*;
    use latchkey::store::schema::api_keys;
    let mut conn = app.store.conn().unwrap();
    api_keys::table
        .filter(api_keys::id.eq(id))
        .select((api_keys::digest, api_keys::digest_kind))
        .first(&mut *conn)
        .unwrap()
}

fn results(answer: &Value) -> &Vec<Value> {
    answer["results"].as_array().expect("results")
}

#[tokio::test]
async fn unkey_digests_verify_upgrade_and_keep_verifying() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let (app, t, ks) = (&world.app, world.token(), &world.space().keyspace_id);
    let (by_b64, b64, _) = foreign_key("uk");
    let (by_hex, _, hex) = foreign_key("uk");
    let (plain, plain_b64, _) = foreign_key("glpat");
    let body = json!({"keys": [
        {"external_ref": "unkey:1", "sha256_base64": b64, "start": "uk_", "keyspace_id": ks,
         "owner_id": "customer_1", "scopes": ["documents:read"], "meta": {"plan": "pro"}},
        {"external_ref": "crates:2", "sha256_hex": hex, "keyspace_id": ks},
        {"external_ref": "gitlab:3", "key": plain, "keyspace_id": ks, "name": "ci"},
    ]});
    let response = app.post_json("/v1/keys/import", t, &body).await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let answer = expect_json(response, 200).await;
    assert_eq!(answer["imported"], 3, "{answer}");
    let ids: Vec<String> = results(&answer)
        .iter()
        .map(|r| {
            assert_eq!(r["status"], "imported");
            s(&r["key"], "id")
        })
        .collect();
    let first = &results(&answer)[0]["key"];
    assert_eq!(first["external_ref"], "unkey:1");
    assert_eq!(first["start"], "uk_");
    assert_eq!(first["owner_id"], "customer_1");
    // The answer never carries a secret or digest.
    let text = answer.to_string();
    for secret in [&by_b64, &b64, &hex, &plain, &plain_b64] {
        assert!(!text.contains(secret.as_str()));
    }

    let sha = |key: &str| {
        use sha2::Digest as _;
        sha2::Sha256::digest(key.as_bytes()).to_vec()
    };
    let (stored, kind) = stored_digest(app, &ids[0]);
    assert_eq!((stored, kind.as_str()), (sha(&by_b64), "legacy_sha256"));
    let (stored, kind) = stored_digest(app, &ids[2]);
    assert_ne!(
        stored,
        sha(&plain),
        "a plaintext is stored under latchkey's digest"
    );
    assert_eq!(kind, "legacy_hmac");

    let verified = world
        .verify(&by_b64, json!({"scopes": ["documents:read"]}))
        .await;
    assert_eq!(verified["code"], "VALID", "{verified}");
    assert_eq!(verified["key_id"], ids[0].as_str());
    assert_eq!(verified["owner_id"], "customer_1");
    assert_eq!(verified["meta"]["plan"], "pro");
    let (upgraded, kind) = stored_digest(app, &ids[0]);
    assert_eq!(kind, "legacy_hmac", "upgraded at the first verification");
    assert_ne!(upgraded, sha(&by_b64), "the SHA-256 is no longer stored");
    for _ in 0..3 {
        assert_eq!(
            world.verify_code(&by_b64).await,
            "VALID",
            "and keeps verifying"
        );
    }
    assert_eq!(world.verify_code(&by_hex).await, "VALID");
    assert_eq!(world.verify_code(&plain).await, "VALID");
    let upgrades = app.audit(t, "action=key.digest_upgrade").await;
    assert_eq!(upgrades.len(), 2, "one upgrade per key imported by digest");
    let created = app.audit(t, "action=key.create").await;
    assert!(
        created
            .iter()
            .any(|e| e["changes"]["imported_from"] == "sha256")
    );

    // A different value of the same shape, and another tenant, find nothing.
    let (stranger, _, _) = foreign_key("uk");
    assert_eq!(world.verify_code(&stranger).await, "NOT_FOUND");
    let other = app.space("globex").await;
    assert_eq!(app.verify_code(other.token(), &by_b64).await, "NOT_FOUND");
    let (theirs, theirs_b64, _) = foreign_key("uk");
    let into_acme =
        json!({"keys": [{"external_ref": "x", "sha256_base64": theirs_b64, "keyspace_id": ks}]});
    let answer = expect_json(
        app.post_json("/v1/keys/import", other.token(), &into_acme)
            .await,
        200,
    )
    .await;
    assert_eq!(
        (
            &results(&answer)[0]["status"],
            &results(&answer)[0]["field"]
        ),
        (&json!("invalid"), &json!("keyspace_id")),
        "another tenant's keyspace is no keyspace"
    );
    assert_eq!(world.verify_code(&theirs).await, "NOT_FOUND");

    // Revoking an imported key works as for any other.
    let revoked = app
        .post_json(&format!("/v1/keys/{}/revoke", ids[1]), t, &json!({}))
        .await;
    assert_eq!(revoked.status(), 200);
    assert_eq!(world.verify_code(&by_hex).await, "REVOKED");
}

#[tokio::test]
async fn an_import_is_idempotent_per_item_and_answers_each_one() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let (app, t, ks) = (&world.app, world.token(), &world.space().keyspace_id);
    let (key, b64, _) = foreign_key("uk");
    let native = world.create_key(|k| k).await;
    let item = json!({"external_ref": "a", "sha256_base64": b64, "keyspace_id": ks});
    let first = app
        .post_json("/v1/keys/import", t, &json!({"keys": [item]}))
        .await;
    let first = expect_json(first, 200).await;
    let id = s(&results(&first)[0]["key"], "id");

    let (other, _, other_hex) = foreign_key("uk");
    let body = json!({"keys": [
        item,
        {"external_ref": "b", "sha256_base64": b64, "keyspace_id": ks},
        {"external_ref": "c", "key": native.key, "keyspace_id": ks},
        {"external_ref": "d", "sha256_hex": "abc", "keyspace_id": ks},
        {"external_ref": "e", "key": other, "sha256_hex": other_hex, "keyspace_id": ks},
        {"external_ref": "f", "key": "short", "keyspace_id": ks},
        {"external_ref": "g", "sha256_hex": other_hex, "keyspace_id": "019a5f0e-7c1d-7b2a-9d4e-3f2a1b0c9d8e"},
        {"external_ref": "h", "sha256_hex": other_hex, "keyspace_id": ks, "scopes": ["no"]},
        {"external_ref": "i", "sha256_hex": other_hex, "keyspace_id": ks},
        {"external_ref": "i", "key": other, "keyspace_id": ks},
    ]});
    let answer = expect_json(app.post_json("/v1/keys/import", t, &body).await, 200).await;
    let got: Vec<(String, String)> = results(&answer)
        .iter()
        .map(|r| (s(r, "status"), r["field"].as_str().unwrap_or("").to_owned()))
        .collect();
    let want = [
        ("duplicate", "external_ref"),
        ("duplicate", "sha256_base64"),
        ("duplicate", "key"),
        ("invalid", "sha256_hex"),
        ("invalid", "key"),
        ("invalid", "key"),
        ("invalid", "keyspace_id"),
        ("invalid", "scopes"),
        ("imported", ""),
        ("duplicate", "external_ref"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(got, want, "{answer}");
    assert_eq!(
        results(&answer)[0]["key"]["id"],
        id.as_str(),
        "a retry names its key"
    );
    assert_eq!(
        (
            &answer["imported"],
            &answer["duplicates"],
            &answer["invalid"]
        ),
        (&json!(1), &json!(4), &json!(5))
    );
    assert!(!answer.to_string().contains(&other));
    assert_eq!(world.verify_code(&key).await, "VALID");
    assert_eq!(world.verify_code(&other).await, "VALID");
}

#[tokio::test]
async fn a_batch_of_the_wrong_size_is_refused_whole() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let (app, t, ks) = (&world.app, world.token(), &world.space().keyspace_id);
    let items: Vec<Value> = (0..1001)
        .map(|i| json!({"external_ref": format!("r{i}"), "sha256_hex": format!("{i:064x}"), "keyspace_id": ks}))
        .collect();
    for keys in [json!(items), json!([])] {
        let response = app
            .post_json("/v1/keys/import", t, &json!({ "keys": keys }))
            .await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], "keys", "{problem}");
    }
    let listed = world.get_ok("/v1/keys").await;
    assert_eq!(
        listed["data"].as_array().unwrap().len(),
        0,
        "nothing imported"
    );
    assert!(app.audit(t, "action=key.create").await.is_empty());
}

#[tokio::test]
async fn importing_needs_keys_create() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let (app, ks) = (&world.app, &world.space().keyspace_id);
    let reader = app.create_root_key(world.token(), &["keys:read"]).await;
    let (_, b64, _) = foreign_key("uk");
    let body = json!({"keys": [{"external_ref": "a", "sha256_base64": b64, "keyspace_id": ks}]});
    let response = app
        .post_json("/v1/keys/import", &s(&reader, "key"), &body)
        .await;
    assert_eq!(response.status(), 403);
}

/// A leaked imported key pasted into the dashboard's leak report is found and revoked, whether
/// it is still stored under its SHA-256 or was upgraded at a verification.
#[tokio::test]
async fn a_pasted_imported_key_is_revoked_as_leaked() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let (app, t, ks) = (&world.app, world.token(), &world.space().keyspace_id);
    let (by_digest, b64, _) = foreign_key("uk");
    let (upgraded, b64_upgraded, _) = foreign_key("uk");
    let body = json!({"keys": [
        {"external_ref": "unkey:1", "sha256_base64": b64, "keyspace_id": ks},
        {"external_ref": "unkey:2", "sha256_base64": b64_upgraded, "keyspace_id": ks},
    ]});
    let answer = expect_json(app.post_json("/v1/keys/import", t, &body).await, 200).await;
    assert_eq!(answer["imported"], 2, "{answer}");
    assert_eq!(world.verify(&upgraded, json!({})).await["code"], "VALID");
    let owner = crate::dashboard::support::Visitor::signed_in(app, "owner@acme.example.com").await;
    for key in [&by_digest, &upgraded] {
        let fields = [("key", key.as_str()), ("reason", "pasted in a ticket")];
        let response = owner.submit("/leaks", "/leaks", &fields).await;
        assert_eq!(response.status(), 200);
        let page = response.text().await.unwrap();
        assert!(page.contains("Revoked "), "{page}");
        assert!(
            !page.contains(key.as_str()),
            "the pasted key is never shown back"
        );
        assert_eq!(world.verify(key, json!({})).await["code"], "REVOKED");
    }
}
