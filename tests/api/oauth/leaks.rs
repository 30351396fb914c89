//! `POST /v1/leaks`: signed secret-scanning reports (GitHub's partner format) revoke the keys
//! they name on every node; anything unsigned or badly signed is 401 and changes nothing.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use latchkey::config::Settings;
use latchkey::startup::Application;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey, LineEnding};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::documents_client;
use crate::helpers::{Api, TestApp, World, s, test_env};

/// A secret scanner with a real P-256 key pair, registered with the app under `KEY_ID`.
pub(crate) struct Scanner {
    pub key: SigningKey,
    /// The public-key file the app reads.
    pub keys_file: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

const KEY_ID: &str = "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a";

fn random_signing_key() -> SigningKey {
    loop {
        if let Ok(key) = SigningKey::from_slice(&rand::random::<[u8; 32]>()) {
            return key;
        }
    }
}

/// A world whose app trusts a freshly generated scanner key (plus a retired one).
async fn world_with_scanner() -> (World, Scanner) {
    world_with_scanner_and(&[]).await
}

/// [`world_with_scanner`] with `extra` settings.
pub(crate) async fn world_with_scanner_and(extra: &[(&str, &str)]) -> (World, Scanner) {
    let key = random_signing_key();
    let retired = random_signing_key();
    let pem = |k: &SigningKey| k.verifying_key().to_public_key_pem(LineEnding::LF).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("github-keys.json");
    std::fs::write(
        &path,
        json!({"public_keys": [
            {"key_identifier": KEY_ID, "key": pem(&key), "is_current": true},
            {"key_identifier": "retired", "key": pem(&retired), "is_current": false},
        ]})
        .to_string(),
    )
    .unwrap();
    let mut env = vec![("LATCHKEY_LEAK_REPORTER_KEYS", path.to_str().unwrap())];
    env.extend_from_slice(extra);
    let world = TestApp::spawn_with(&env).await.with_space("acme").await;
    (
        world,
        Scanner {
            key,
            keys_file: path,
            _dir: dir,
        },
    )
}

pub(crate) fn sign(key: &SigningKey, body: &[u8]) -> String {
    let signature: Signature = key.sign(body);
    STANDARD.encode(signature.to_der().as_bytes())
}

/// The headers of a report signed with `signature` under `KEY_ID`.
pub(crate) fn signed(signature: &str) -> [(&str, &str); 2] {
    [
        ("Github-Public-Key-Identifier", KEY_ID),
        ("Github-Public-Key-Signature", signature),
    ]
}

pub(crate) async fn post_report(
    node: &Api,
    body: &[u8],
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = node
        .client
        .post(node.url("/v1/leaks"))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

pub(crate) fn report(tokens: &[&str]) -> Vec<u8> {
    let items: Vec<Value> = tokens
        .iter()
        .map(|t| {
            json!({"token": t, "type": "latchkey_api_key",
                "url": "https://github.com/octo/app/blob/main/.env", "source": "content"})
        })
        .collect();
    serde_json::to_vec(&items).unwrap()
}

#[tokio::test]
async fn a_signed_report_revokes_the_key_on_every_node() {
    let (world, scanner) = world_with_scanner().await;
    // A second node over the same database.
    let keys_file = scanner.keys_file.to_str().unwrap();
    let env = test_env(&world.app.db, &[("LATCHKEY_LEAK_REPORTER_KEYS", keys_file)]);
    let settings = Settings::load(&env, None).unwrap();
    let second = Application::build(settings).await.unwrap();
    let node2 = Api::at(&format!("http://127.0.0.1:{}", second.port()));
    tokio::spawn(second.run_until_stopped());

    let leaked = world.create_key(documents_client).await;
    let bystander = world.create_key(documents_client).await;
    let token = world.access_token(&leaked, None).await;
    let stranger = "acme_live_8Hq2vR0dXk3N7bYc1LmQ5sTf9WpZ4gJe6UaOiE2x";
    let body = report(&[&leaked.key, stranger]);
    let response = post_report(&world.app, &body, &signed(&sign(&scanner.key, &body))).await;
    assert_eq!(response.status(), 200);
    let feedback: Value = response.json().await.unwrap();
    assert_eq!(
        feedback,
        json!([
            {"token_raw": leaked.key, "token_type": "latchkey_api_key", "label": "true_positive"},
            {"token_hash": hex::encode(Sha256::digest(stranger)), "token_type": "latchkey_api_key",
             "label": "false_positive"},
        ])
    );

    // Refused by both nodes once the report is answered, tokens minted from it included. (How
    // fast is measured in bench/, not asserted here: a loaded CI machine is no stopwatch.)
    for node in [&world.app.api, &node2] {
        let code = node.verify_code(world.token(), &leaked.key).await;
        assert_eq!(code, "REVOKED", "{}", node.base);
    }
    assert_eq!(world.verify(&token, json!({})).await["code"], "REVOKED");
    assert_eq!(
        world.verify(&bystander.key, json!({})).await["code"],
        "VALID"
    );

    let key = world.get_ok(&format!("/v1/keys/{}", leaked.id)).await;
    assert_eq!(key["revoked_reason"], "leaked");
    let events = world
        .get_ok(&format!(
            "/v1/audit-events?action=key.revoke&target={}",
            leaked.id
        ))
        .await;
    let event = &events["data"][0];
    assert_eq!(event["actor"]["type"], "leak_reporter", "{events}");
    assert_eq!(event["actor"]["id"], KEY_ID);
    assert_eq!(event["changes"]["reason"], "leaked");
    assert_eq!(
        event["changes"]["leak"]["url"],
        "https://github.com/octo/app/blob/main/.env"
    );
    assert_eq!(event["changes"]["leak"]["source"], "content");

    // Reported again: still ours, still revoked, no second event.
    let response = post_report(&node2, &body, &signed(&sign(&scanner.key, &body))).await;
    let feedback: Value = response.json().await.unwrap();
    assert_eq!(feedback[0]["label"], "true_positive");
    let events = world
        .get_ok(&format!(
            "/v1/audit-events?action=key.revoke&target={}",
            leaked.id
        ))
        .await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn unsigned_or_badly_signed_reports_change_nothing() {
    let (world, scanner) = world_with_scanner().await;
    let client = world.create_key(documents_client).await;
    let body = report(&[&client.key]);
    let good = sign(&scanner.key, &body);
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    let impostor = sign(&random_signing_key(), &body);

    type Case<'a> = (&'a str, Vec<u8>, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        ("no headers", body.clone(), vec![]),
        (
            "no signature",
            body.clone(),
            vec![("Github-Public-Key-Identifier", KEY_ID)],
        ),
        (
            "no key id",
            body.clone(),
            vec![("Github-Public-Key-Signature", &good)],
        ),
        ("tampered body", tampered, signed(&good).to_vec()),
        (
            "wrong key id",
            body.clone(),
            vec![
                ("Github-Public-Key-Identifier", "retired"),
                ("Github-Public-Key-Signature", &good),
            ],
        ),
        (
            "unknown key id",
            body.clone(),
            vec![
                ("Github-Public-Key-Identifier", "nope"),
                ("Github-Public-Key-Signature", &good),
            ],
        ),
        (
            "signed by another key",
            body.clone(),
            signed(&impostor).to_vec(),
        ),
        ("signature not base64", body.clone(), signed("%%%").to_vec()),
    ];
    for (what, body, headers) in cases {
        let response = post_report(&world.app, &body, &headers).await;
        assert_eq!(response.status(), 401, "{what}");
    }
    assert_eq!(world.verify(&client.key, json!({})).await["code"], "VALID");
    let events = world
        .get_ok(&format!(
            "/v1/audit-events?action=key.revoke&target={}",
            client.id
        ))
        .await;
    assert!(events["data"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn without_configured_reporters_every_report_is_refused() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let client = world.create_key(documents_client).await;
    let body = report(&[&client.key]);
    let signature = sign(&random_signing_key(), &body);
    let response = post_report(&world.app, &body, &signed(&signature)).await;
    assert_eq!(response.status(), 401);
    assert_eq!(world.verify(&client.key, json!({})).await["code"], "VALID");
}

#[tokio::test]
async fn a_batch_of_1000_tokens_is_answered_token_by_token() {
    let (world, scanner) = world_with_scanner().await;
    let mut leaked = Vec::new();
    for _ in 0..5 {
        leaked.push(world.create_key(documents_client).await.key);
    }
    let strangers: Vec<String> = (0..995).map(|i| format!("ghp_{i:036}")).collect();
    let tokens: Vec<&str> = leaked
        .iter()
        .chain(strangers.iter())
        .map(String::as_str)
        .collect();
    let body = report(&tokens);
    let response = post_report(&world.app, &body, &signed(&sign(&scanner.key, &body))).await;
    assert_eq!(response.status(), 200);
    let feedback: Vec<Value> = response.json().await.unwrap();
    assert_eq!(feedback.len(), 1000);
    let true_positives = feedback
        .iter()
        .filter(|f| f["label"] == "true_positive")
        .count();
    assert_eq!(true_positives, 5);
    for secret in &leaked {
        assert_eq!(world.verify(secret, json!({})).await["code"], "REVOKED");
    }
}

#[tokio::test]
async fn a_leaked_root_key_and_access_token_are_revoked_and_a_repeat_is_labelled_alike() {
    let (world, scanner) = world_with_scanner().await;
    let app = &world.app;
    // The tenant's only `root_keys:*` key leaks: it is revoked all the same.
    let admin = world.token().to_owned();
    let reader = app
        .create_root_key(&admin, &["audit:read", "keys:read", "keys:verify"])
        .await;
    let reader = s(&reader, "key");
    let twice = world.create_key(documents_client).await;
    let minter = world.create_key(documents_client).await;
    let token = world.access_token(&minter, None).await;
    let entry = |token: &str, url: &str| json!({"token": token, "type": "latchkey_key", "url": url, "source": "content"});
    let body = serde_json::to_vec(&json!([
        entry(&twice.key, "https://example.com/first"),
        entry(&admin, "https://example.com/root"),
        entry(&token, "https://example.com/jwt"),
        entry(&twice.key, "https://example.com/second"),
    ]))
    .unwrap();
    let response = post_report(app, &body, &signed(&sign(&scanner.key, &body))).await;
    assert_eq!(response.status(), 200);
    let feedback: Value = response.json().await.unwrap();
    let labels: Vec<&str> = feedback
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["true_positive"; 4], "{feedback}");

    let refused = app.get_as("/v1/keys", &admin).await;
    assert_eq!(refused.status(), 401, "the leaked root key no longer works");
    assert_eq!(app.verify_code(&reader, &token).await, "REVOKED");
    assert_eq!(app.verify_code(&reader, &minter.key).await, "VALID");
    assert_eq!(app.verify_code(&reader, &twice.key).await, "REVOKED");

    let root = app.audit(&reader, "action=root_key.revoke").await;
    assert_eq!(root.len(), 1, "{root:?}");
    assert_eq!(root[0]["actor"]["type"], "leak_reporter");
    assert_eq!(root[0]["changes"]["reason"], "leaked");
    assert_eq!(root[0]["changes"]["last_admin_key"], true);
    assert_eq!(
        root[0]["changes"]["leak"]["url"],
        "https://example.com/root"
    );
    let keys = app
        .audit(&reader, &format!("action=key.revoke&target={}", twice.id))
        .await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    let urls: Vec<&Value> = keys[0]["changes"]["leaks"]
        .as_array()
        .expect("every report of the key")
        .iter()
        .map(|l| &l["url"])
        .collect();
    assert_eq!(
        urls,
        [
            &json!("https://example.com/first"),
            &json!("https://example.com/second")
        ]
    );
    let denied = app.audit(&reader, "action=token.revoke").await;
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0]["actor"]["type"], "leak_reporter");
}
