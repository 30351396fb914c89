//! Signing keys, each tenant's own: generated when the tenant first needs one, stored with the
//! private half encrypted (AES-256-GCM under a key derived from `LATCHKEY_SECRET_KEY`), so every
//! node signs with and publishes the same set for a tenant. Rotation adds a key; the old one keeps verifying until every token
//! it signed has expired, then leaves the JWKS.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{NaiveDateTime, TimeDelta};
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{DecodingKey, EncodingKey};
use rand::TryRngCore as _;
use rand::rngs::OsRng;
use secrecy::zeroize::Zeroizing;
use serde_json::json;

use crate::domain::ids::TenantId;
use crate::domain::secrets::{DerivedSecrets, SecretKey32};
use crate::domain::time::Clock;
use crate::domain::token::SigningAlgorithm;
use crate::store::models::SigningKeyRow;
use crate::store::{DbConnection, Store, StoreError, signing_keys, tenants};
use crate::sync::lock;

/// How long a node trusts its in-memory copy of the key set; a rotation on another node (or by
/// the CLI) is seen within this bound.
const REFRESH: Duration = Duration::from_secs(5);
/// A token naming an unknown `kid` reloads the set at most this often, so random kids cannot
/// turn into a query per request.
const FORCED_REFRESH_MIN_GAP: TimeDelta = TimeDelta::seconds(1);
/// Slack after the last possible expiry of a retired key's tokens before it leaves the JWKS:
/// covers nodes still signing with it for up to [`REFRESH`] and verifiers' clock skew.
const RETIREMENT_SLACK_SECONDS: i64 = 120;

/// Encrypts and decrypts private keys at rest. Decryption also tries the keys derived from
/// retired master secrets (`LATCHKEY_PREVIOUS_SECRET_KEYS`).
#[derive(Clone)]
pub struct KeyCipher {
    current: SecretKey32,
    previous: Vec<SecretKey32>,
}

impl KeyCipher {
    pub fn new(current: &DerivedSecrets, previous: &[DerivedSecrets]) -> Self {
        Self {
            current: current.signing_key_encryption.clone(),
            previous: previous
                .iter()
                .map(|d| d.signing_key_encryption.clone())
                .collect(),
        }
    }

    /// The row's kid and algorithm are bound as associated data: a ciphertext moved to another
    /// row does not decrypt.
    fn aad(kid: &str, algorithm: &str) -> Vec<u8> {
        format!("latchkey-signing-key:{algorithm}:{kid}").into_bytes()
    }

    fn encrypt(&self, kid: &str, algorithm: &str, secret: &[u8]) -> Vec<u8> {
        self.seal(&Self::aad(kid, algorithm), secret)
    }

    fn decrypt(&self, kid: &str, algorithm: &str, sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        self.open(&Self::aad(kid, algorithm), sealed)
    }

    /// Encrypts a secret that must be used later (not only compared), bound to `aad` (say, the
    /// row it is stored in, so a ciphertext moved to another row does not decrypt).
    pub fn seal(&self, aad: &[u8], secret: &[u8]) -> Vec<u8> {
        self.current.seal(aad, secret)
    }

    /// Decrypts what [`KeyCipher::seal`] sealed under the same `aad`, with the current master
    /// secret's key or a retired one's.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        std::iter::once(&self.current)
            .chain(self.previous.iter())
            .find_map(|key| key.open(aad, sealed))
    }
}

/// A freshly generated key pair: the row to store (private half sealed).
fn generate(
    cipher: &KeyCipher,
    tenant: &TenantId,
    algorithm: SigningAlgorithm,
    at: NaiveDateTime,
) -> SigningKeyRow {
    let mut secret = Zeroizing::new([0u8; 32]);
    let public = loop {
        OsRng
            .try_fill_bytes(secret.as_mut())
            .expect("the OS CSPRNG must be available to generate a signing key");
        match algorithm {
            SigningAlgorithm::EdDSA => {
                let key = ed25519_dalek::SigningKey::from_bytes(&secret);
                break json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()),
                });
            }
            SigningAlgorithm::ES256 => {
                // A random 32-byte string is a valid P-256 scalar except with negligible odds.
                let Ok(key) = p256::SecretKey::from_slice(secret.as_ref()) else {
                    continue;
                };
                let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(
                    &key.public_key(),
                    false,
                );
                let (Some(x), Some(y)) = (point.x(), point.y()) else {
                    continue;
                };
                break json!({
                    "kty": "EC",
                    "crv": "P-256",
                    "x": URL_SAFE_NO_PAD.encode(x),
                    "y": URL_SAFE_NO_PAD.encode(y),
                });
            }
        }
    };
    let jwk: Jwk = serde_json::from_value(public.clone()).expect("a well-formed public JWK");
    // RFC 7638 thumbprint: a kid that names exactly this public key.
    let kid = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .expect("thumbprints of OKP and EC keys are defined");
    let mut published = public;
    published["kid"] = json!(kid);
    published["alg"] = json!(algorithm.as_str());
    published["use"] = json!("sig");
    SigningKeyRow {
        private_key_encrypted: cipher.encrypt(&kid, algorithm.as_str(), secret.as_ref()),
        kid,
        tenant_id: tenant.as_str().to_owned(),
        algorithm: algorithm.as_str().to_owned(),
        public_jwk: published.to_string(),
        created_at: at,
        retired_at: None,
        remove_after: None,
    }
}

/// The PKCS#8 form `jsonwebtoken` signs with.
fn encoding_key(algorithm: SigningAlgorithm, secret: &[u8]) -> Option<EncodingKey> {
    use p256::pkcs8::EncodePrivateKey;
    match algorithm {
        SigningAlgorithm::EdDSA => {
            let bytes: [u8; 32] = secret.try_into().ok()?;
            let der = ed25519_dalek::SigningKey::from_bytes(&bytes)
                .to_pkcs8_der()
                .ok()?;
            Some(EncodingKey::from_ed_der(der.as_bytes()))
        }
        SigningAlgorithm::ES256 => {
            let der = p256::SecretKey::from_slice(secret)
                .ok()?
                .to_pkcs8_der()
                .ok()?;
            Some(EncodingKey::from_ec_der(der.as_bytes()))
        }
    }
}

/// The key a node signs with now.
pub struct Signer {
    pub kid: String,
    pub algorithm: SigningAlgorithm,
    pub key: EncodingKey,
}

/// A published key, for checking signatures.
pub struct Verifier {
    pub algorithm: SigningAlgorithm,
    pub key: DecodingKey,
}

/// What one load of a tenant's key set yields.
#[derive(Default)]
struct KeySet {
    signer: Option<Arc<Signer>>,
    verifiers: HashMap<String, Arc<Verifier>>,
    jwks: Vec<serde_json::Value>,
}

struct Cached {
    loaded_at: NaiveDateTime,
    set: Arc<KeySet>,
}

/// Every node's view of each tenant's signing keys: each tenant is its own issuer and signs with
/// keys of its own, cached for a few seconds and loaded from the store.
pub struct Keyring {
    store: Store,
    cipher: KeyCipher,
    algorithm: SigningAlgorithm,
    /// How long tokens live; a retired key stays published this long (plus slack).
    token_ttl_seconds: i64,
    cache: RwLock<HashMap<TenantId, Cached>>,
    /// When a token naming an unknown `kid` last reloaded each tenant's set.
    last_forced: Mutex<HashMap<TenantId, NaiveDateTime>>,
    clock: Clock,
}

impl Keyring {
    pub fn new(
        store: Store,
        cipher: KeyCipher,
        algorithm: SigningAlgorithm,
        token_ttl_seconds: i64,
        clock: Clock,
    ) -> Self {
        Self {
            store,
            cipher,
            algorithm,
            token_ttl_seconds,
            cache: RwLock::new(HashMap::new()),
            last_forced: Mutex::new(HashMap::new()),
            clock,
        }
    }

    pub fn algorithm(&self) -> SigningAlgorithm {
        self.algorithm
    }

    /// The key `tenant` signs with, generating its first one (or one of a newly configured
    /// algorithm). The caller vouches that the tenant exists.
    pub async fn signer(&self, tenant: &TenantId) -> Result<Arc<Signer>, StoreError> {
        if let Some(signer) = self.current(tenant, false).await?.signer.clone() {
            return Ok(signer);
        }
        let (cipher, algorithm, ttl) =
            (self.cipher.clone(), self.algorithm, self.token_ttl_seconds);
        let (owner, at) = (tenant.clone(), self.clock.now());
        self.store
            .run(move |conn| ensure_active(conn, &owner, &cipher, algorithm, ttl, at))
            .await?;
        self.current(tenant, true)
            .await?
            .signer
            .clone()
            .ok_or_else(|| StoreError::Task("no usable signing key after generating one".into()))
    }

    /// The key named `kid` that `tenant` publishes, reloading once (throttled per tenant) if this
    /// node does not know it. Another tenant's key is never found here.
    pub async fn verifier(
        &self,
        tenant: &TenantId,
        kid: &str,
    ) -> Result<Option<Arc<Verifier>>, StoreError> {
        if let Some(v) = self.current(tenant, false).await?.verifiers.get(kid) {
            return Ok(Some(v.clone()));
        }
        let may_force = {
            let now = self.clock.now();
            let mut last = lock(&self.last_forced);
            let due = last
                .get(tenant)
                .is_none_or(|t| now - *t >= FORCED_REFRESH_MIN_GAP);
            if due {
                last.insert(tenant.clone(), now);
            }
            due
        };
        if !may_force {
            return Ok(None);
        }
        Ok(self
            .current(tenant, true)
            .await?
            .verifiers
            .get(kid)
            .cloned())
    }

    /// The public keys `tenant` publishes (RFC 7517 `keys`), making sure one exists. The caller
    /// vouches that the tenant exists.
    pub async fn jwks(&self, tenant: &TenantId) -> Result<Vec<serde_json::Value>, StoreError> {
        self.signer(tenant).await?;
        Ok(self.current(tenant, false).await?.jwks.clone())
    }

    async fn current(&self, tenant: &TenantId, force: bool) -> Result<Arc<KeySet>, StoreError> {
        if !force
            && let Some(cached) = self
                .cache
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(tenant)
            && (self.clock.now() - cached.loaded_at)
                .to_std()
                .is_ok_and(|age| age < REFRESH)
        {
            return Ok(cached.set.clone());
        }
        let (owner, at) = (tenant.clone(), self.clock.now());
        let rows = self
            .store
            .run(move |conn| signing_keys::published(conn, &owner, at))
            .await?;
        let set = Arc::new(self.build(rows));
        self.cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                tenant.clone(),
                Cached {
                    loaded_at: at,
                    set: set.clone(),
                },
            );
        Ok(set)
    }

    fn build(&self, rows: Vec<SigningKeyRow>) -> KeySet {
        let mut set = KeySet::default();
        for row in rows {
            let Some(algorithm) = SigningAlgorithm::parse(&row.algorithm) else {
                continue;
            };
            let Ok(jwk) = serde_json::from_str::<serde_json::Value>(&row.public_jwk) else {
                tracing::error!(kid = %row.kid, "stored signing key has a malformed public JWK");
                continue;
            };
            let decoding = serde_json::from_value::<Jwk>(jwk.clone())
                .ok()
                .and_then(|j| DecodingKey::from_jwk(&j).ok());
            let Some(decoding) = decoding else {
                tracing::error!(kid = %row.kid, "stored signing key's public JWK is unusable");
                continue;
            };
            // Rows come newest first: the first active key of the configured algorithm signs.
            if set.signer.is_none() && row.retired_at.is_none() && algorithm == self.algorithm {
                match self
                    .cipher
                    .decrypt(&row.kid, &row.algorithm, &row.private_key_encrypted)
                    .and_then(|secret| encoding_key(algorithm, &secret))
                {
                    Some(key) => {
                        set.signer = Some(Arc::new(Signer {
                            kid: row.kid.clone(),
                            algorithm,
                            key,
                        }))
                    }
                    None => tracing::error!(
                        kid = %row.kid,
                        "cannot decrypt a signing key: was LATCHKEY_SECRET_KEY changed without \
                         listing the old one in LATCHKEY_PREVIOUS_SECRET_KEYS?"
                    ),
                }
            }
            set.verifiers.insert(
                row.kid,
                Arc::new(Verifier {
                    algorithm,
                    key: decoding,
                }),
            );
            set.jwks.push(jwk);
        }
        set
    }
}

/// Makes sure `tenant` has an active key of `algorithm`; when it has to create one, it retires
/// the tenant's others (e.g. of an algorithm no longer configured) so they only verify from now
/// on. Nodes generating a tenant's first key at once take turns on the tenant's row lock.
fn ensure_active(
    conn: &mut DbConnection,
    tenant: &TenantId,
    cipher: &KeyCipher,
    algorithm: SigningAlgorithm,
    token_ttl_seconds: i64,
    at: NaiveDateTime,
) -> Result<(), StoreError> {
    crate::store::write_transaction(conn, |conn| {
        tenants::lock(conn, tenant)?;
        let usable = signing_keys::published(conn, tenant, at)?
            .into_iter()
            .any(|row| {
                row.retired_at.is_none()
                    && row.algorithm == algorithm.as_str()
                    && cipher
                        .decrypt(&row.kid, &row.algorithm, &row.private_key_encrypted)
                        .is_some()
            });
        if !usable {
            let new = take_over_signing(conn, tenant, cipher, algorithm, token_ttl_seconds, at)?;
            tracing::info!(
                tenant = %tenant,
                kid = %new.kid,
                algorithm = algorithm.as_str(),
                "generated a signing key"
            );
        }
        Ok(())
    })
}

/// Inside a transaction holding the tenant's lock: a new key of `algorithm` signs for `tenant`
/// from `at` on, and its other active keys only verify, until every token they signed expired.
fn take_over_signing(
    conn: &mut DbConnection,
    tenant: &TenantId,
    cipher: &KeyCipher,
    algorithm: SigningAlgorithm,
    token_ttl_seconds: i64,
    at: NaiveDateTime,
) -> Result<Rotated, StoreError> {
    let row = generate(cipher, tenant, algorithm, at);
    signing_keys::insert(conn, &row)?;
    let remove_after = retirement_end(at, token_ttl_seconds);
    let retired = signing_keys::retire_all_but(conn, tenant, &row.kid, at, remove_after)?;
    Ok(Rotated {
        tenant_id: tenant.as_str().to_owned(),
        kid: row.kid,
        algorithm: algorithm.as_str(),
        retired,
        retired_keys_removed_after: remove_after.and_utc(),
    })
}

fn retirement_end(at: NaiveDateTime, token_ttl_seconds: i64) -> NaiveDateTime {
    at + TimeDelta::seconds(token_ttl_seconds + RETIREMENT_SLACK_SECONDS)
}

/// The result of rotating one tenant's keys, for the operator.
#[derive(Debug, serde::Serialize)]
pub struct Rotated {
    pub tenant_id: String,
    pub kid: String,
    pub algorithm: &'static str,
    /// Keys that stopped signing; they stay in the JWKS until `retired_keys_removed_after`.
    pub retired: usize,
    pub retired_keys_removed_after: chrono::DateTime<chrono::Utc>,
}

/// Gives every tenant that signs tokens a new signing key and retires its others
/// (`latchkey signing-keys rotate`). Keys that left the JWKS more than a day ago are deleted.
pub fn rotate(
    conn: &mut DbConnection,
    cipher: &KeyCipher,
    algorithm: SigningAlgorithm,
    token_ttl_seconds: i64,
    at: NaiveDateTime,
) -> Result<Vec<Rotated>, StoreError> {
    let mut rotated = Vec::new();
    for tenant in signing_keys::tenants_signing(conn)? {
        rotated.push(crate::store::write_transaction(conn, |conn| {
            tenants::lock(conn, &tenant)?;
            take_over_signing(conn, &tenant, cipher, algorithm, token_ttl_seconds, at)
        })?);
    }
    signing_keys::delete_removed(conn, at - TimeDelta::days(1))?;
    Ok(rotated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::secrets::MasterKey;

    fn cipher() -> KeyCipher {
        KeyCipher::new(&MasterKey::generate().derive(), &[])
    }

    #[test]
    fn private_keys_round_trip_and_are_bound_to_their_row() {
        let cipher = cipher();
        let sealed = cipher.encrypt("kid1", "EdDSA", &[7u8; 32]);
        assert_eq!(
            cipher.decrypt("kid1", "EdDSA", &sealed).unwrap().as_slice(),
            &[7u8; 32]
        );
        assert!(cipher.decrypt("kid2", "EdDSA", &sealed).is_none());
        assert!(cipher.decrypt("kid1", "ES256", &sealed).is_none());
        assert!(
            super::tests::cipher()
                .decrypt("kid1", "EdDSA", &sealed)
                .is_none()
        );
    }

    #[test]
    fn previous_master_keys_still_decrypt() {
        let old = MasterKey::generate().derive();
        let sealed = KeyCipher::new(&old, &[]).encrypt("k", "ES256", &[1u8; 32]);
        let rotated = KeyCipher::new(&MasterKey::generate().derive(), &[old]);
        assert!(rotated.decrypt("k", "ES256", &sealed).is_some());
    }

    #[test]
    fn generated_keys_sign_and_their_jwk_verifies() {
        let cipher = cipher();
        for algorithm in [SigningAlgorithm::EdDSA, SigningAlgorithm::ES256] {
            let row = generate(&cipher, &TenantId::new(), algorithm, crate::store::now());
            let secret = cipher
                .decrypt(&row.kid, &row.algorithm, &row.private_key_encrypted)
                .unwrap();
            let key = encoding_key(algorithm, &secret).expect("usable private key");
            let jwk: Jwk = serde_json::from_str(&row.public_jwk).unwrap();
            assert_eq!(jwk.common.key_id.as_deref(), Some(row.kid.as_str()));
            let signature = jsonwebtoken::crypto::sign(b"hello", &key, algorithm.jose()).unwrap();
            let public = DecodingKey::from_jwk(&jwk).unwrap();
            assert!(
                jsonwebtoken::crypto::verify(&signature, b"hello", &public, algorithm.jose())
                    .unwrap()
            );
        }
    }
}
