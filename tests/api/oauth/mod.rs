//! OAuth 2.0 and leak intake: the token, introspection and revocation endpoints, discovery,
//! access tokens at `/v1/keys/verify`, signing-key rotation, and signed leak reports.

mod discovery;
mod introspect;
mod issuers;
pub(crate) mod leaks;
mod revoke;
mod token;
mod verify;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::helpers::{KeySpec, TestKey, World};

/// A key of `customer_42`, whom its access tokens name as `sub`. Any key is an OAuth client:
/// `client_id` is the key id, `client_secret` the key.
pub fn customer(k: KeySpec) -> KeySpec {
    k.owner("customer_42")
}

/// A key of `customer_42` with `documents:read documents:write`.
pub fn documents_client(k: KeySpec) -> KeySpec {
    customer(k).scopes(["documents:read", "documents:write"])
}

impl World {
    /// An access token for `client` by the client credentials grant, optionally narrowed.
    pub async fn access_token(&self, client: &TestKey, scope: Option<&str>) -> String {
        self.app.access_token(client, scope).await
    }

    /// The tenant's issuer path, `/oauth/{tenant_id}`: its endpoints and JWKS are below it.
    pub fn issuer_path(&self) -> String {
        format!("/oauth/{}", self.tenant.id)
    }

    /// The tenant's issuer as its tokens name it (the app's address without a public URL).
    pub fn issuer(&self) -> String {
        self.app.url(&self.issuer_path())
    }

    /// The default audience of the newest keyspace's tokens.
    pub fn audience(&self) -> String {
        format!("{}/keyspaces/{}", self.issuer(), self.space().keyspace_id)
    }

    /// The tenant's RFC 8414 metadata, found by path insertion as libraries do.
    pub async fn metadata(&self) -> Value {
        let path = format!(
            "/.well-known/oauth-authorization-server/oauth/{}",
            self.tenant.id
        );
        crate::helpers::expect_json(self.app.get(&path).await, 200).await
    }

    /// The key set the tenant's metadata names.
    pub async fn jwks_of_metadata(&self, metadata: &Value) -> jsonwebtoken::jwk::JwkSet {
        let url = metadata["jwks_uri"].as_str().expect("jwks_uri");
        let response = self.app.client.get(url).send().await.expect("JWKS");
        let jwks = crate::helpers::expect_json(response, 200).await;
        serde_json::from_value(jwks).expect("a JWK set")
    }

    /// The tenant's published key set, `{issuer}/jwks.json`.
    pub async fn jwks(&self) -> Value {
        let response = self
            .app
            .get(&format!("{}/jwks.json", self.issuer_path()))
            .await;
        crate::helpers::expect_json(response, 200).await
    }

    /// The key ids the key set publishes, in its order.
    pub async fn published_kids(&self) -> Vec<String> {
        let jwks = self.jwks().await;
        let keys = jwks["keys"].as_array().expect("keys");
        keys.iter()
            .map(|k| k["kid"].as_str().expect("kid").to_owned())
            .collect()
    }

    /// `POST /oauth/introspect` with the tenant's root key.
    pub async fn introspect(&self, token: &str) -> reqwest::Response {
        self.app
            .client
            .post(self.app.url("/oauth/introspect"))
            .bearer_auth(self.token())
            .form(&[("token", token)])
            .send()
            .await
            .expect("request")
    }
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
        // A bearer's refusal challenges the bearer (RFC 6750 §3), client credentials' Basic.
        let scheme = if error == "invalid_token" {
            "Bearer "
        } else {
            "Basic "
        };
        assert!(challenge.starts_with(scheme), "{challenge}");
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
