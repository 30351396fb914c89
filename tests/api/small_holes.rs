//! Small holes, each closed: two `Authorization` headers are refused, the dashboard's Origin
//! check compares with `LATCHKEY_PUBLIC_URL`, the SQLite files are private, HTTPS deployments
//! send HSTS, and `/metrics` can be protected by a token.

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};

use crate::dashboard::support::{PASSWORD, Visitor};
use crate::helpers::{TestApp, assert_problem};

fn two(first: &str, second: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.append(AUTHORIZATION, HeaderValue::from_str(first).unwrap());
    headers.append(AUTHORIZATION, HeaderValue::from_str(second).unwrap());
    headers
}

#[tokio::test]
async fn two_authorization_headers_are_refused_never_resolved_to_the_first() {
    let app = TestApp::spawn().await;
    let space = app.space("acme").await;
    let bearer = format!("Bearer {}", space.token());
    let response = app
        .client
        .get(app.url("/v1/keys"))
        .headers(two(&bearer, "Bearer someone-else"))
        .send()
        .await
        .unwrap();
    assert_problem(response, 401, "unauthorized").await;
    // The same root key twice is refused all the same: which header counts is never a question.
    let response = app
        .client
        .get(app.url("/v1/keys"))
        .headers(two(&bearer, &bearer))
        .send()
        .await
        .unwrap();
    assert_problem(response, 401, "unauthorized").await;

    let key = app.create_key(&space, |k| k).await;
    use base64::Engine;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", key.id, key.key))
    );
    let token = |headers: HeaderMap| {
        app.client
            .post(app.url("/oauth/token"))
            .headers(headers)
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    let mut one = HeaderMap::new();
    one.insert(AUTHORIZATION, HeaderValue::from_str(&basic).unwrap());
    assert_eq!(token(one).await.unwrap().status(), 200, "one header works");
    let response = token(two(&basic, "Basic Zm9vOmJhcg==")).await.unwrap();
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_request", "{body}");
}

#[tokio::test]
async fn dashboard_posts_must_come_from_the_public_url() {
    let app = TestApp::spawn_with(&[("LATCHKEY_TRUSTED_PROXIES", "10.0.0.0/8")]).await;
    app.tenant("acme").await;
    let email = "owner@acme.example.com";
    let sign_in = |origin: &str, extra: &[(&'static str, &str)]| {
        let visitor = Visitor::new(&app);
        let origin = origin.to_owned();
        let extra: Vec<(&'static str, String)> =
            extra.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        async move {
            let token = visitor.csrf("/sign-in").await;
            let mut request = visitor
                .client
                .post(format!("{}/sign-in", visitor.base))
                .header("origin", origin)
                .form(&[
                    ("csrf_token", token.as_str()),
                    ("email", email),
                    ("password", PASSWORD),
                ]);
            for (name, value) in extra {
                request = request.header(name, value);
            }
            request.send().await.unwrap().status().as_u16()
        }
    };
    let port: u16 = app
        .address
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("the app's port");
    assert_eq!(sign_in(&app.address, &[]).await, 303, "same origin");
    // The host a client claims, in any header, is not where the form came from; nor is the
    // right host over another scheme or port.
    for (origin, extra) in [
        (
            "http://evil.example",
            vec![("x-forwarded-host", "evil.example")],
        ),
        (
            "http://evil.example",
            vec![("forwarded", "host=evil.example")],
        ),
        ("https://evil.example", vec![("host", "evil.example")]),
        (&*format!("https://127.0.0.1:{port}"), vec![]),
        (&*format!("http://127.0.0.1:{}", port + 1), vec![]),
        ("null", vec![]),
    ] {
        assert_eq!(sign_in(origin, &extra).await, 403, "{origin} {extra:?}");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn the_sqlite_database_and_its_directory_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let url = format!("sqlite://{}", data.join("latchkey.db").display());
    let app = TestApp::spawn_with(&[("DATABASE_URL", &url)]).await;
    assert_eq!(app.get("/readyz").await.status(), 200);
    let mode = |name: &str| {
        let path = if name.is_empty() {
            data.clone()
        } else {
            data.join(name)
        };
        std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(""), 0o700, "the data directory");
    for file in ["latchkey.db", "latchkey.db-wal", "latchkey.db-shm"] {
        assert_eq!(mode(file), 0o600, "{file}");
    }
}

#[tokio::test]
async fn https_deployments_send_strict_transport_security() {
    let app = TestApp::spawn_with(&[("LATCHKEY_PUBLIC_URL", "https://keys.example.com")]).await;
    for path in ["/healthz", "/v1/keys", "/sign-in"] {
        let response = app.get(path).await;
        assert_eq!(
            response.headers()["strict-transport-security"],
            "max-age=31536000",
            "{path}"
        );
    }
    let plain = TestApp::spawn().await;
    let response = plain.get("/healthz").await;
    assert!(
        response
            .headers()
            .get("strict-transport-security")
            .is_none()
    );
}

#[tokio::test]
async fn metrics_can_require_a_bearer_token() {
    let token = "m3tr1cs-t0ken-for-the-scraper-only";
    let app = TestApp::spawn_with(&[("LATCHKEY_METRICS_TOKEN", token)]).await;
    assert_problem(app.get("/metrics").await, 401, "unauthorized").await;
    let scrape = |bearer: &str| {
        app.client
            .get(app.url("/metrics"))
            .bearer_auth(bearer)
            .send()
    };
    assert_problem(scrape("wrong").await.unwrap(), 401, "unauthorized").await;
    let response = scrape(token).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("# TYPE"));
    // Without the setting, /metrics stays open (for a scraper on a private network).
    let open = TestApp::spawn().await;
    assert_eq!(open.get("/metrics").await.status(), 200);
}
