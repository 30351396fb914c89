//! Access tokens as values: the RFC 9068 claims latchkey signs, the signing algorithms it offers,
//! and the OAuth scope string (space-delimited, RFC 6749 §3.3).

use serde::{Deserialize, Serialize};

use super::ids::TenantId;
use super::scope::{Scope, ScopeError, Scopes};

/// `typ` of every access token latchkey issues (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// The algorithms latchkey signs access tokens with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigningAlgorithm {
    /// Ed25519 (RFC 8037), the default: small keys, fast, deterministic signatures.
    EdDSA,
    /// ECDSA P-256 with SHA-256, for verifiers without Ed25519.
    ES256,
}

impl SigningAlgorithm {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "EdDSA" | "eddsa" | "Ed25519" | "ed25519" => Some(Self::EdDSA),
            "ES256" | "es256" => Some(Self::ES256),
            _ => None,
        }
    }

    /// The JOSE name, as in a JWT header and a JWK `alg`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
        }
    }

    pub fn jose(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Self::ES256 => jsonwebtoken::Algorithm::ES256,
        }
    }
}

/// A tenant's OAuth issuer: each tenant is its own, below the deployment's public URL.
pub fn issuer_of(public_url: &str, tenant: &TenantId) -> String {
    format!("{public_url}/oauth/{tenant}")
}

/// Where an issuer publishes its signing keys (RFC 7517), as its metadata's `jwks_uri` says.
pub fn jwks_uri_of(issuer: &str) -> String {
    format!("{issuer}/jwks.json")
}

/// Where a tenant's RFC 8414 metadata is published by path insertion (RFC 8414 §3.1); it is
/// also at `{issuer}/.well-known/oauth-authorization-server`, where many libraries look.
pub fn metadata_url_of(public_url: &str, tenant: &TenantId) -> String {
    format!("{public_url}/.well-known/oauth-authorization-server/oauth/{tenant}")
}

/// A keyspace's own `aud` for its tokens: an absolute URI naming the tenant's API (such as
/// `https://api.acme.example` or `api://billing`), at most 255 characters, nothing else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenAudience(String);

impl TokenAudience {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let expected = "must be an absolute URI such as https://api.example.com (at most 255 \
                        characters, no spaces)";
        let (scheme, rest) = raw.split_once(':').ok_or(expected)?;
        let scheme_ok = scheme
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        let rest_ok = !rest.is_empty() && rest.chars().all(|c| c.is_ascii_graphic());
        if raw.len() > 255 || !scheme_ok || !rest_ok {
            return Err(expected.into());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// The `aud` of tokens minted from a keyspace's keys when the keyspace sets none.
pub fn default_audience(issuer: &str, keyspace_id: &str) -> String {
    format!("{issuer}/keyspaces/{keyspace_id}")
}

/// The claims of an access token (RFC 9068 §2.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// The tenant's issuer, [`issuer_of`].
    pub iss: String,
    /// The key's `owner_id`, or the key id when it has none.
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    /// The id of the API key the token was minted from.
    pub client_id: String,
    /// The tenant whose key it was minted from (its issuer names it too).
    pub tenant_id: String,
    /// The keyspace of that key; `aud` is the keyspace's audience.
    pub keyspace_id: String,
    /// Space-delimited scopes.
    #[serde(default)]
    pub scope: String,
}

/// Whether a presented credential is shaped like a compact JWS (three base64url parts) rather
/// than an API key. API keys never contain a dot, so the two cannot be confused.
pub fn looks_like_jwt(raw: &str) -> bool {
    raw.len() <= 8192
        && raw.split('.').count() == 3
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Parses an OAuth `scope` parameter: scopes separated by single spaces.
pub fn parse_scope_param(raw: &str) -> Result<Scopes, ScopeError> {
    Scopes::parse(raw.split(' ').filter(|s| !s.is_empty()))
}

/// The OAuth `scope` string of a scope set.
pub fn scope_param(scopes: &Scopes) -> String {
    scopes.to_strings().join(" ")
}

/// The scopes of a token string that still parse; anything malformed grants nothing.
pub fn token_scopes(raw: &str) -> Vec<Scope> {
    raw.split(' ')
        .filter_map(|s| Scope::parse(s).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_audience_is_an_absolute_uri() {
        for ok in [
            "https://api.acme.example",
            "api://billing",
            "urn:acme:orders",
        ] {
            assert_eq!(TokenAudience::parse(ok).unwrap().as_str(), ok);
        }
        let long = format!("https://{}", "a".repeat(250));
        for bad in [
            "",
            "api",
            "://x",
            "1http://x",
            "https://a b",
            "https:",
            &long,
        ] {
            assert!(TokenAudience::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn jwt_shape_is_told_from_keys() {
        assert!(looks_like_jwt("eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln"));
        assert!(!looks_like_jwt(
            "acme_live_8Hq2vR0dXk3N7bYc1LmQ5sTf9WpZ4gJe6UaOiE2x"
        ));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a.b.c d"));
    }

    #[test]
    fn scope_param_round_trips() {
        let scopes = parse_scope_param("documents:write  documents:read").unwrap();
        assert_eq!(scope_param(&scopes), "documents:read documents:write");
        assert!(parse_scope_param("Documents").is_err());
        assert!(parse_scope_param("").unwrap().is_empty());
    }

    #[test]
    fn algorithms_parse_by_jose_name() {
        assert_eq!(
            SigningAlgorithm::parse("EdDSA"),
            Some(SigningAlgorithm::EdDSA)
        );
        assert_eq!(
            SigningAlgorithm::parse("ES256"),
            Some(SigningAlgorithm::ES256)
        );
        assert_eq!(SigningAlgorithm::parse("none"), None);
        assert_eq!(SigningAlgorithm::parse("HS256"), None);
    }
}
