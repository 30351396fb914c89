//! The `latchkey` binary: bootstrap, migrate and clear one-line errors for bad configuration.

use std::process::{Command, Output};

use latchkey::domain::key::KeyHasher;

use crate::helpers::{TEST_SECRET_KEY, TestDatabase, backend};

fn latchkey(db: Option<&TestDatabase>, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LATCHKEY_SECRET_KEY", TEST_SECRET_KEY)
        .env("RUST_LOG", "warn");
    if let Some(db) = db {
        cmd.env("DATABASE_URL", db.url());
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run latchkey")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The error a bad configuration gives: exit code 1 and exactly one line naming the problem.
fn assert_one_line_error(output: &Output, needle: &str) {
    assert_eq!(output.status.code(), Some(1), "{}", stderr(output));
    let err = stderr(output);
    assert_eq!(err.trim_end().lines().count(), 1, "one line, got: {err}");
    assert!(err.starts_with("latchkey: error: "), "{err}");
    assert!(err.contains(needle), "{err} should mention {needle}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bootstrap_prints_a_working_root_key_once_and_refuses_a_second_run() {
    let db = TestDatabase::create(backend());
    let out = latchkey(
        Some(&db),
        &[
            "bootstrap",
            "--tenant",
            "acme",
            "--email",
            "Ada@Example.com",
            "--json",
        ],
        &[(
            "LATCHKEY_BOOTSTRAP_PASSWORD",
            "correct horse battery staple",
        )],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let last = stdout.trim_end().lines().last().unwrap();
    let json: serde_json::Value = serde_json::from_str(last).expect("last line is JSON");
    let root_key = json["root_key"].as_str().unwrap().to_owned();
    assert!(json["tenant_id"].as_str().is_some());
    assert_eq!(json["email"], "ada@example.com");
    assert!(
        json.get("password").is_none(),
        "a given password is not echoed"
    );
    assert!(!stderr(&out).contains(&root_key), "the key is not logged");

    // The printed key is a real root key: it parses under the deployment's secret and its digest
    // is stored for this tenant with every root scope.
    let settings = latchkey::config::Settings::load(
        &[
            ("DATABASE_URL", db.url().as_str()),
            ("LATCHKEY_SECRET_KEY", TEST_SECRET_KEY),
        ],
        None,
    )
    .unwrap();
    let hasher: KeyHasher = settings.key_hasher().unwrap();
    let parsed = hasher.parse(&root_key).expect("root key parses");
    let store = latchkey::store::Store::connect(&settings.database, 1).unwrap();
    let mut conn = store.conn().unwrap();
    let row = latchkey::store::root_keys::find_by_digests(&mut conn, &hasher.digests(&parsed))
        .unwrap()
        .expect("root key stored by digest");
    assert_eq!(row.tenant_id, json["tenant_id"].as_str().unwrap());
    let scopes: Vec<String> = serde_json::from_str(&row.scopes).unwrap();
    for scope in latchkey::domain::scope::ROOT_SCOPES {
        assert!(scopes.iter().any(|s| s == scope), "{scope}");
    }
    drop(conn);

    let again = latchkey(
        Some(&db),
        &[
            "bootstrap",
            "--tenant",
            "acme",
            "--email",
            "other@example.com",
        ],
        &[],
    );
    assert_one_line_error(&again, "already exists");
    assert!(again.stdout.is_empty());
}

#[test]
fn bootstrap_generates_a_password_when_none_is_given() {
    let db = TestDatabase::create(backend());
    let json = bootstrap_json(&db, "beta", "bo@example.com");
    assert!(json["password"].as_str().is_some_and(|p| p.len() >= 20));
}

/// `latchkey bootstrap --json` over `db` with no password given: its JSON line.
fn bootstrap_json(db: &TestDatabase, tenant: &str, email: &str) -> serde_json::Value {
    let out = latchkey(
        Some(db),
        &["bootstrap", "--tenant", tenant, "--email", email, "--json"],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(stdout.trim_end().lines().last().unwrap()).expect("last line is JSON")
}

#[test]
fn bootstrap_rejects_bad_input_without_changing_anything() {
    let db = TestDatabase::create(backend());
    let out = latchkey(
        Some(&db),
        &["bootstrap", "--tenant", "acme", "--email", "not-an-email"],
        &[],
    );
    assert_one_line_error(&out, "e-mail");
    let out = latchkey(
        Some(&db),
        &["bootstrap", "--tenant", "acme", "--email", "a@example.com"],
        &[("LATCHKEY_BOOTSTRAP_PASSWORD", "short")],
    );
    assert_one_line_error(&out, "at least 12 characters");
    // Neither attempt created the tenant.
    let ok = latchkey(
        Some(&db),
        &["bootstrap", "--tenant", "acme", "--email", "a@example.com"],
        &[],
    );
    assert!(ok.status.success(), "{}", stderr(&ok));
}

#[test]
fn migrate_applies_and_reports() {
    let db = TestDatabase::create(backend());
    let out = latchkey(Some(&db), &["migrate"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("up to date"));
}

#[test]
fn bad_configuration_is_one_clear_line() {
    let out = latchkey(
        None,
        &["migrate"],
        &[("DATABASE_URL", "mysql://localhost/x")],
    );
    assert_one_line_error(&out, "unknown scheme `mysql://`");

    let out = latchkey(None, &["migrate"], &[("LATCHKEY_BIND", "everywhere")]);
    assert_one_line_error(&out, "LATCHKEY_BIND");

    let out = latchkey(None, &["migrate"], &[("LATCHKEY_SECRET_KEY", "tooshort")]);
    assert_one_line_error(&out, "LATCHKEY_SECRET_KEY");

    // PostgreSQL without a master key names the missing variable.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    let out = cmd
        .arg("migrate")
        .env_clear()
        .env(
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/postgres",
        )
        .output()
        .unwrap();
    assert_one_line_error(&out, "LATCHKEY_SECRET_KEY");

    // An unreachable database: one line, exit 1, no panic.
    let out = latchkey(
        None,
        &["migrate"],
        &[("DATABASE_URL", "postgres://postgres:pw@127.0.0.1:1/nowhere")],
    );
    assert_one_line_error(&out, "cannot connect");
    assert!(!stderr(&out).contains(":pw@"), "password never printed");
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let out = latchkey(None, &["frobnicate"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

/// A root key minted by `latchkey bootstrap` under the test apps' secret.
fn bootstrapped_root_key(db: &TestDatabase) -> String {
    let json = bootstrap_json(db, "scan", "s@example.com");
    json["root_key"].as_str().unwrap().to_owned()
}

/// Log lines shaped like the test apps' own: signing-key thumbprints (base64url SHA-256), about
/// one in 800 of which has a key's shape.
fn thumbprint_lines(count: u32) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    (0..count)
        .map(|i| {
            let kid = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha2::Sha256::digest(format!("kid {i}")));
            format!("{{\"message\":\"generated a signing key\",\"kid\":\"{kid}\"}}\n")
        })
        .collect()
}

/// The suite's log check (scripts/check-logs) catches a key written to a log, says where, and
/// does not print it; it passes thousands of thumbprints that have a key's shape.
#[test]
fn the_log_check_catches_a_logged_key_and_nothing_else() {
    let db = TestDatabase::create(backend());
    let key = bootstrapped_root_key(&db);
    let dir = tempfile::tempdir().unwrap();
    let clean = dir.path().join("clean.log");
    std::fs::write(&clean, thumbprint_lines(20_000)).unwrap();
    let leaky = dir.path().join("leaky.log");
    let mut lines = thumbprint_lines(3);
    lines.push_str(&format!(
        "{{\"message\":\"request\",\"authorization\":\"Bearer {key}\"}}\n"
    ));
    std::fs::write(&leaky, lines).unwrap();

    // The script's own default secret must be the test apps' one; a secret in the caller's
    // shell must not replace it.
    let check_logs = |files: &[&std::path::Path]| {
        Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/check-logs"))
            .args(files)
            .env("LATCHKEY_BIN", env!("CARGO_BIN_EXE_latchkey"))
            .env_remove("LATCHKEY_CHECK_LOGS_SECRET_KEY")
            .env("LATCHKEY_SECRET_KEY", "aa".repeat(32))
            .output()
            .expect("run scripts/check-logs")
    };
    let out = check_logs(&[&clean]);
    assert!(out.status.success(), "{}", stderr(&out));

    let out = check_logs(&[&clean, &leaky]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    let start = &key[..key.rfind('_').unwrap() + 5];
    assert!(
        printed.contains(&format!("leaky.log:4: latchkey key {start}")),
        "{printed}"
    );
    assert!(!printed.contains("clean.log:"), "{printed}");
    assert!(
        !printed.contains(&key[start.len()..]),
        "the key itself is never printed"
    );
}

/// `latchkey scan` also finds keys made under a retired master key that still verifies, and
/// none made under another deployment's.
#[test]
fn scan_knows_previous_secrets_and_ignores_other_deployments() {
    let db = TestDatabase::create(backend());
    let key = bootstrapped_root_key(&db);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dump.txt");
    std::fs::write(&file, format!("token={key}\n")).unwrap();
    let file = file.to_str().unwrap();

    let other = "aa".repeat(32);
    let rotated = latchkey(
        None,
        &["scan", file],
        &[
            ("LATCHKEY_SECRET_KEY", &other),
            ("LATCHKEY_PREVIOUS_SECRET_KEYS", TEST_SECRET_KEY),
        ],
    );
    assert_eq!(rotated.status.code(), Some(3), "{}", stderr(&rotated));
    assert!(String::from_utf8_lossy(&rotated.stdout).contains(":1: latchkey key "));

    let elsewhere = latchkey(None, &["scan", file], &[("LATCHKEY_SECRET_KEY", &other)]);
    assert!(elsewhere.status.success(), "{}", stderr(&elsewhere));
    assert!(elsewhere.stdout.is_empty());
}

/// Without a secret to check against, `latchkey scan` says so (exit 1) instead of generating
/// one and reporting no key; it leaves no secret file behind.
#[test]
fn scan_without_a_secret_refuses_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.log");
    std::fs::write(&file, "nothing here\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["scan", file.to_str().unwrap()])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_one_line_error(&out, "no secret to check keys against");
    assert!(!dir.path().join("data").exists(), "no secret was generated");
}
