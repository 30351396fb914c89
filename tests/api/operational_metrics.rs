//! `/metrics` as an operator scrapes it after some traffic: the process's own metrics, requests
//! by route pattern and status (never by raw path), token issuance and sign-ins by outcome,
//! cache lookups by kind; and `promtool check metrics` accepts the exposition.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::dashboard::support::{PASSWORD, Visitor};
use crate::helpers::{TestApp, metric, print_skip};
use crate::oauth::documents_client;

#[tokio::test]
async fn metrics_count_requests_by_route_pattern_and_outcomes_by_kind() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let (app, token) = (&world.app, world.token());
    let client = world.create_key(documents_client).await;
    // Management: a key read by id, and an unknown id.
    app.get_key(token, &client.id).await;
    let unknown = "0190a7f2-0000-7000-8000-00000000beef";
    let response = app.get_as(&format!("/v1/keys/{unknown}"), token).await;
    assert_eq!(response.status(), 404);
    // A path no route matches, with something a client typed in it.
    let typed = "lk_root_typed_into_a_url";
    assert_eq!(app.get(&format!("/v1/nothing/{typed}")).await.status(), 404);
    // OAuth: one token issued, one refused.
    app.access_token(&client, None).await;
    let mut impostor = client.clone();
    impostor.key = format!("{}x", &client.key[..client.key.len() - 1]);
    let response = app
        .token_request(&impostor, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(response.status(), 401);
    // Verification has its own metrics, not the per-route ones.
    assert_eq!(app.verify_code(token, &client.key).await, "VALID");
    // The dashboard: a sign-in refused, then one that succeeds.
    app.tenant("globex").await;
    let visitor = Visitor::new(app);
    let email = "owner@globex.example.com";
    assert_eq!(
        visitor.sign_in(email, "wrong password!").await.status(),
        401
    );
    assert_eq!(visitor.sign_in(email, PASSWORD).await.status(), 303);

    let text = app.metrics().await;
    let sample = |name: &str| metric(&text, name);
    let requests = |labels: &str| sample(&format!("latchkey_http_requests_total{{{labels}}}"));
    assert_eq!(
        requests(r#"method="GET",route="/v1/keys/{id}",status="200""#),
        1.0,
        "{text}"
    );
    assert_eq!(
        requests(r#"method="GET",route="/v1/keys/{id}",status="404""#),
        1.0
    );
    assert_eq!(
        requests(r#"method="GET",route="unmatched",status="404""#),
        1.0
    );
    assert_eq!(
        requests(r#"method="POST",route="/oauth/token",status="200""#),
        1.0
    );
    assert_eq!(
        requests(r#"method="POST",route="/oauth/token",status="401""#),
        1.0
    );
    assert_eq!(
        requests(r#"method="POST",route="/sign-in",status="401""#),
        1.0
    );
    assert_eq!(
        requests(r#"method="POST",route="/sign-in",status="303""#),
        1.0
    );
    assert_eq!(
        sample(
            r#"latchkey_http_request_duration_seconds_count{method="POST",route="/oauth/token",status="200"}"#
        ),
        1.0
    );
    for leaked in [client.id.as_str(), unknown, typed, "/v1/keys/verify"] {
        assert!(
            !text.contains(leaked),
            "{leaked} is in the metrics:\n{text}"
        );
    }

    assert_eq!(
        sample(r#"latchkey_token_requests_total{outcome="issued"}"#),
        1.0
    );
    assert_eq!(
        sample(r#"latchkey_token_requests_total{outcome="invalid_client"}"#),
        1.0
    );
    assert_eq!(sample(r#"latchkey_sign_ins_total{outcome="success"}"#), 1.0);
    assert_eq!(sample(r#"latchkey_sign_ins_total{outcome="refused"}"#), 1.0);
    assert_eq!(
        sample(r#"latchkey_sign_ins_total{outcome="throttled"}"#),
        0.0
    );

    // Cache lookups by kind: API keys (verification, OAuth) apart from root keys.
    let lookups = |kind: &str| {
        ["hit", "miss"]
            .iter()
            .map(|result| {
                sample(&format!(
                    r#"latchkey_cache_lookups_total{{kind="{kind}",result="{result}",tier="l1"}}"#
                ))
            })
            .sum::<f64>()
    };
    assert!(lookups("key") >= 2.0, "{text}");
    assert!(lookups("root_key") >= 3.0, "{text}");
    assert!(
        sample(r#"latchkey_cache_lookups_total{kind="root_key",result="hit",tier="l1"}"#) >= 1.0,
        "the same root key again is an L1 hit"
    );

    // The process's own, unprefixed.
    assert!(text.contains("\n# TYPE process_cpu_seconds_total counter\n"));
    assert!(sample("process_resident_memory_bytes") > 0.0);
    assert!(sample("process_open_fds") > 0.0);

    promtool_check(&text);
}

/// `promtool check metrics` on the exposition: required where LATCHKEY_REQUIRE_PROMTOOL=1 (the
/// test command installs it), skipped with a note elsewhere when it is missing.
fn promtool_check(text: &str) {
    let required = std::env::var("LATCHKEY_REQUIRE_PROMTOOL").is_ok_and(|v| v == "1");
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(err) if !required => {
            print_skip(module_path!(), &format!("promtool is not runnable ({err})"));
            return;
        }
        Err(err) => panic!("LATCHKEY_REQUIRE_PROMTOOL=1 but promtool is not runnable: {err}"),
    };
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
