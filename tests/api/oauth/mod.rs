//! OAuth 2.0 and leak intake: the token, introspection and revocation endpoints, discovery,
//! access tokens at `/v1/keys/verify`, signing-key rotation, and signed leak reports.

mod discovery;
mod introspect;
mod issuers;
mod leaks;
mod revoke;
mod token;
mod verify;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestTenant};

/// A tenant with one keyspace, on a fresh app.
pub struct World {
    pub app: TestApp,
    pub tenant: TestTenant,
    pub keyspace_id: String,
}

/// An API key as an OAuth client: `client_id` is the key id, `client_secret` the key.
#[derive(Clone, Debug)]
pub struct Client {
    pub id: String,
    pub secret: String,
}

impl World {
    pub async fn new() -> Self {
        Self::with(&[]).await
    }

    pub async fn with(extra: &[(&str, &str)]) -> Self {
        let app = TestApp::spawn_with(extra).await;
        let tenant = app.tenant("acme").await;
        let keyspace_id = keyspace(&app, &tenant, "acme_live", json!({})).await;
        Self {
            app,
            tenant,
            keyspace_id,
        }
    }

    /// A key in the world's keyspace; `body` adds or overrides fields of the create request.
    pub async fn client(&self, body: Value) -> Client {
        create_key(&self.app, &self.tenant, &self.keyspace_id, body).await
    }

    /// A key with `documents:read documents:write`.
    pub async fn default_client(&self) -> Client {
        self.client(json!({"scopes": ["documents:read", "documents:write"]}))
            .await
    }

    /// The tenant's issuer path, `/oauth/{tenant_id}`: its endpoints and JWKS are below it.
    pub fn issuer_path(&self) -> String {
        format!("/oauth/{}", self.tenant.id)
    }

    /// The tenant's issuer as its tokens name it (the app's address without a public URL).
    pub fn issuer(&self) -> String {
        self.app.url(&self.issuer_path())
    }

    /// The tenant's RFC 8414 metadata, found by path insertion as libraries do.
    pub async fn metadata(&self) -> Value {
        let path = format!(
            "/.well-known/oauth-authorization-server/oauth/{}",
            self.tenant.id
        );
        let response = self.app.get(&path).await;
        assert_eq!(response.status(), 200, "metadata");
        response.json().await.expect("metadata")
    }

    /// The key set the tenant's metadata names.
    pub async fn jwks_of_metadata(&self, metadata: &Value) -> jsonwebtoken::jwk::JwkSet {
        let url = metadata["jwks_uri"].as_str().expect("jwks_uri");
        let response = self.app.client.get(url).send().await.expect("JWKS");
        assert_eq!(response.status(), 200, "JWKS");
        response.json().await.expect("JWKS")
    }

    /// The tenant's published key set.
    pub async fn jwks(&self) -> Value {
        let response = self
            .app
            .get(&format!("{}/jwks.json", self.issuer_path()))
            .await;
        assert_eq!(response.status(), 200, "JWKS");
        response.json().await.expect("JWKS")
    }

    pub async fn token(&self, client: &Client, scope: Option<&str>) -> String {
        token_for(&self.app, client, scope).await
    }

    pub async fn verify(&self, key: &str, extra: Value) -> Value {
        verify_as(&self.app, &self.tenant, key, extra).await
    }

    pub async fn introspect(&self, token: &str) -> reqwest::Response {
        self.app
            .client
            .post(self.app.url("/oauth/introspect"))
            .bearer_auth(&self.tenant.root_key)
            .form(&[("token", token)])
            .send()
            .await
            .expect("request")
    }

    pub async fn post_json(&self, path: &str, body: Value) -> reqwest::Response {
        self.app
            .client
            .post(self.app.url(path))
            .bearer_auth(&self.tenant.root_key)
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self
            .app
            .client
            .get(self.app.url(path))
            .bearer_auth(&self.tenant.root_key)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("JSON")
    }
}

pub async fn keyspace(app: &TestApp, tenant: &TestTenant, prefix: &str, extra: Value) -> String {
    let mut body = json!({"name": prefix, "prefix": prefix});
    merge(&mut body, extra);
    let response = app
        .client
        .post(app.url("/v1/keyspaces"))
        .bearer_auth(&tenant.root_key)
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 201, "create keyspace");
    let body: Value = response.json().await.expect("JSON");
    body["id"].as_str().expect("keyspace id").to_owned()
}

pub async fn create_key(
    app: &TestApp,
    tenant: &TestTenant,
    keyspace_id: &str,
    extra: Value,
) -> Client {
    let mut body = json!({"keyspace_id": keyspace_id, "owner_id": "customer_42"});
    merge(&mut body, extra);
    let response = app
        .client
        .post(app.url("/v1/keys"))
        .bearer_auth(&tenant.root_key)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = response.status();
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(status, 201, "create key: {body}");
    Client {
        id: body["id"].as_str().expect("key id").to_owned(),
        secret: body["key"].as_str().expect("plaintext key").to_owned(),
    }
}

fn merge(base: &mut Value, extra: Value) {
    if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
        for (k, v) in extra {
            base.insert(k, v);
        }
    }
}

/// `POST /oauth/token` with HTTP Basic client authentication and the given form.
pub async fn token_request(
    app: &TestApp,
    client: &Client,
    form: &[(&str, &str)],
) -> reqwest::Response {
    app.client
        .post(app.url("/oauth/token"))
        .basic_auth(&client.id, Some(&client.secret))
        .form(form)
        .send()
        .await
        .expect("request")
}

pub async fn token_for(app: &TestApp, client: &Client, scope: Option<&str>) -> String {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    let response = token_request(app, client, &form).await;
    let status = response.status();
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(status, 200, "token: {body}");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

pub async fn verify_as(app: &TestApp, tenant: &TestTenant, key: &str, extra: Value) -> Value {
    let mut body = json!({"key": key});
    merge(&mut body, extra);
    let response = app
        .client
        .post(app.url("/v1/keys/verify"))
        .bearer_auth(&tenant.root_key)
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200, "verify");
    response.json().await.expect("JSON")
}

/// Asserts an RFC 6749 §5.2 error: status, `error`, a description, no caching.
pub async fn assert_oauth_error(response: reqwest::Response, status: u16, error: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status for {error}");
    assert_eq!(
        response.headers()["cache-control"],
        "no-store",
        "errors are not cached"
    );
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    if status == 401 {
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(challenge.starts_with("Basic "), "{challenge}");
    }
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"], error, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    body
}

/// The decoded header and claims of a compact JWT, without checking anything.
pub fn parts(token: &str) -> (Value, Value) {
    let mut pieces = token.split('.');
    let mut decode = || -> Value {
        let bytes = URL_SAFE_NO_PAD
            .decode(pieces.next().expect("three parts"))
            .expect("base64url");
        serde_json::from_slice(&bytes).expect("JSON part")
    };
    let header = decode();
    let claims = decode();
    (header, claims)
}

/// Re-encodes a JWT's parts (to forge tokens in tests).
pub fn encode_part(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}
