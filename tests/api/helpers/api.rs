//! `Api`: the REST and OAuth endpoints of one node (an in-process app or a `latchkey` process),
//! as tests call them. Cheap to clone into tasks.

use reqwest::Method;
use serde_json::{Value, json};

use super::{KeySpec, TestKey, TestSpace, TestTenant, expect_json};

/// The HTTP client of every test: no redirects followed, no connection kept idle for long.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // The server closes a connection idle for 5 s; a client that reused one that old could
        // send on it just as it closes. Idle connections are dropped well before.
        .pool_idle_timeout(std::time::Duration::from_secs(1))
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("http client")
}

#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
}

impl Api {
    pub fn at(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            client: client(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A GET without credentials.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.call(Method::GET, path, None, None).await
    }

    /// Any request with an optional bearer token and an optional JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> reqwest::Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request")
    }

    /// Sends a request; answers the status, the content type and the body (JSON, or a string).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, String, Value) {
        let response = self.call(method, path, token, body).await;
        let (status, content_type) = (response.status().as_u16(), content_type(&response));
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, content_type, body)
    }

    /// A request that must answer `status` with JSON; answers the body.
    pub async fn expect(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
        status: u16,
    ) -> Value {
        let response = self.call(method.clone(), path, Some(token), body).await;
        let actual = response.status().as_u16();
        let text = response.text().await.expect("body");
        assert_eq!(actual, status, "{method} {path} on {}: {text}", self.base);
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{method} {path}: not JSON: {text}"))
    }

    pub async fn get_as(&self, path: &str, token: &str) -> reqwest::Response {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post_json(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn delete_as(&self, path: &str, token: &str) -> reqwest::Response {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    pub async fn patch_json(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    /// A POST with a raw body and content type (for malformed input).
    pub async fn post_raw(
        &self,
        path: &str,
        token: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request")
    }

    /// GET that must answer 200 with JSON.
    pub async fn get_ok(&self, path: &str, token: &str) -> Value {
        self.expect(Method::GET, path, token, None, 200).await
    }

    // ---- keyspaces and keys ----

    /// Creates a keyspace named after its prefix; answers the 201 body.
    pub async fn create_keyspace(&self, token: &str, prefix: &str) -> Value {
        let body = json!({"name": format!("{prefix} keys"), "prefix": prefix});
        self.expect(Method::POST, "/v1/keyspaces", token, Some(&body), 201)
            .await
    }

    /// A keyspace of `tenant` with `prefix`.
    pub async fn keyspace(&self, tenant: &TestTenant, prefix: &str) -> TestSpace {
        let created = self.create_keyspace(&tenant.root_key, prefix).await;
        TestSpace {
            tenant: tenant.clone(),
            keyspace_id: created["id"].as_str().expect("keyspace id").to_owned(),
            prefix: prefix.to_owned(),
        }
    }

    /// Creates a key in `space` as `spec` describes it (`|k| k` for the keyspace's defaults).
    pub async fn create_key(
        &self,
        space: &TestSpace,
        spec: impl FnOnce(KeySpec) -> KeySpec,
    ) -> TestKey {
        let body = spec(KeySpec::default()).body(&space.keyspace_id);
        let created = self
            .expect(Method::POST, "/v1/keys", space.token(), Some(&body), 201)
            .await;
        TestKey::created(created)
    }

    pub async fn get_key(&self, token: &str, id: &str) -> Value {
        self.get_ok(&format!("/v1/keys/{id}"), token).await
    }

    /// A PATCH of the key `id` that must answer 200; answers the key.
    pub async fn patch_key(&self, token: &str, id: &str, body: Value) -> Value {
        let path = format!("/v1/keys/{id}");
        self.expect(Method::PATCH, &path, token, Some(&body), 200)
            .await
    }

    /// Revokes the key `id` (without a reason); answers the key.
    pub async fn revoke(&self, token: &str, id: &str) -> Value {
        let path = format!("/v1/keys/{id}/revoke");
        self.expect(Method::POST, &path, token, Some(&json!({})), 200)
            .await
    }

    /// Rotates the key `id` with a grace period for the old one; answers the new key.
    pub async fn rotate(&self, token: &str, id: &str, grace_period_seconds: u32) -> TestKey {
        let path = format!("/v1/keys/{id}/rotate");
        let body = json!({"grace_period_seconds": grace_period_seconds});
        TestKey::created(
            self.expect(Method::POST, &path, token, Some(&body), 201)
                .await,
        )
    }

    /// Verifies with a full body; the answer must be 200 (the verification ran).
    pub async fn verify_with(&self, token: &str, body: Value) -> Value {
        self.expect(Method::POST, "/v1/keys/verify", token, Some(&body), 200)
            .await
    }

    pub async fn verify(&self, token: &str, key: &str) -> Value {
        self.verify_with(token, json!({"key": key})).await
    }

    /// The verify code of `key` for `token`'s tenant.
    pub async fn verify_code(&self, token: &str, key: &str) -> String {
        self.verify(token, key).await["code"]
            .as_str()
            .expect("code")
            .to_owned()
    }

    /// Creates a root key with `scopes`; answers the 201 body (with `key`).
    pub async fn create_root_key(&self, token: &str, scopes: &[&str]) -> Value {
        let body = json!({"name": "limited", "scopes": scopes});
        self.expect(Method::POST, "/v1/root-keys", token, Some(&body), 201)
            .await
    }

    /// Every audit event matching `query` (e.g. `action=key.create`), newest first, one page.
    pub async fn audit(&self, token: &str, query: &str) -> Vec<Value> {
        let page = self
            .get_ok(&format!("/v1/audit-events?limit=100&{query}"), token)
            .await;
        page["data"].as_array().expect("data").clone()
    }

    // ---- OAuth ----

    /// `POST /oauth/token` with `client`'s id and key in HTTP Basic authentication.
    pub async fn token_request(
        &self,
        client: &TestKey,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        self.client
            .post(self.url("/oauth/token"))
            .basic_auth(&client.id, Some(&client.key))
            .form(form)
            .send()
            .await
            .expect("token request")
    }

    /// An access token for `client` by the client credentials grant, optionally narrowed.
    pub async fn access_token(&self, client: &TestKey, scope: Option<&str>) -> String {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend(scope.map(|scope| ("scope", scope)));
        let response = self.token_request(client, &form).await;
        let answer = expect_json(response, 200).await;
        answer["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    // ---- operations ----

    /// `/readyz`: status code and body.
    pub async fn readyz(&self) -> (u16, Value) {
        let (status, _, body) = self.send(Method::GET, "/readyz", None, None).await;
        (status, body)
    }

    /// The Prometheus text at `/metrics`.
    pub async fn metrics(&self) -> String {
        let (status, _, body) = self.send(Method::GET, "/metrics", None, None).await;
        assert_eq!(status, 200);
        body.as_str().expect("metrics are text").to_owned()
    }

    /// One sample of `/metrics`, e.g. `latchkey_store_lookups_total` (0 when absent).
    pub async fn metric(&self, sample: &str) -> f64 {
        metric(&self.metrics().await, sample)
    }
}

/// The `Content-Type` of a response ("" when it has none).
pub fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The value of the sample named exactly `sample` (name and labels) in Prometheus text.
pub fn metric(text: &str, sample: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == sample).then(|| value.parse().ok())?
        })
        .unwrap_or(0.0)
}
