//! Secret-scanner authentication, as GitHub's secret-scanning partner program does it: an ECDSA
//! P-256 signature over SHA-256 of the raw body, by a key the request names, checked against a
//! public-key file in GitHub's format (`{"public_keys": [{key_identifier, key, is_current}]}`).

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde::Deserialize;

/// Header naming the reporter's key.
pub const KEY_IDENTIFIER_HEADER: &str = "Github-Public-Key-Identifier";
/// Header holding the base64 DER signature.
pub const SIGNATURE_HEADER: &str = "Github-Public-Key-Signature";

#[derive(Deserialize)]
struct KeyFile {
    public_keys: Vec<PublishedKey>,
}

#[derive(Deserialize)]
struct PublishedKey {
    key_identifier: String,
    /// PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
    key: String,
    /// GitHub keeps retired keys listed (not current); reports may still be signed with them
    /// briefly, so every listed key is accepted.
    #[serde(default)]
    #[allow(dead_code)]
    is_current: bool,
}

/// Why a report was not accepted as signed. Every variant answers the same 401.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("no reporter key is configured under this identifier")]
    UnknownKey,
    #[error("the signature is not base64-encoded DER")]
    Malformed,
    #[error("the signature does not match the body")]
    Mismatch,
}

/// The configured reporters' keys, by identifier. Empty when none are configured: every report
/// is then refused.
#[derive(Default)]
pub struct LeakReporters {
    keys: HashMap<String, VerifyingKey>,
}

impl LeakReporters {
    /// Reads a key file; a key that does not parse fails the start rather than being skipped.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!("cannot read LATCHKEY_LEAK_REPORTER_KEYS {}", path.display())
        })?;
        Self::parse(&text)
            .with_context(|| format!("LATCHKEY_LEAK_REPORTER_KEYS {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let file: KeyFile =
            serde_json::from_str(text).context("expected {\"public_keys\": [...]} JSON")?;
        let mut keys = HashMap::new();
        for entry in file.public_keys {
            let key = VerifyingKey::from_public_key_pem(entry.key.trim()).with_context(|| {
                format!("key {} is not a PEM P-256 public key", entry.key_identifier)
            })?;
            keys.insert(entry.key_identifier, key);
        }
        Ok(Self { keys })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Checks the signature of `body` made by the key named `identifier`.
    pub fn verify(
        &self,
        identifier: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<(), SignatureError> {
        let identifier = identifier.ok_or(SignatureError::MissingHeader(KEY_IDENTIFIER_HEADER))?;
        let signature = signature.ok_or(SignatureError::MissingHeader(SIGNATURE_HEADER))?;
        let key = self
            .keys
            .get(identifier.trim())
            .ok_or(SignatureError::UnknownKey)?;
        let der = STANDARD
            .decode(signature.trim())
            .map_err(|_| SignatureError::Malformed)?;
        let signature = Signature::from_der(&der).map_err(|_| SignatureError::Malformed)?;
        // Either S is a valid ECDSA signature; verifiers differ on accepting the high one.
        let signature = signature.normalize_s().unwrap_or(signature);
        key.verify(body, &signature)
            .map_err(|_| SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer;
    use p256::pkcs8::{EncodePublicKey, LineEnding};

    fn reporter() -> (SigningKey, LeakReporters) {
        let signing = SigningKey::from_slice(&[42u8; 32]).unwrap();
        let pem = signing
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        let file = serde_json::json!({"public_keys": [
            {"key_identifier": "k1", "key": pem, "is_current": true}
        ]});
        (signing, LeakReporters::parse(&file.to_string()).unwrap())
    }

    #[test]
    fn accepts_a_good_signature_and_refuses_the_rest() {
        let (signing, reporters) = reporter();
        let body = br#"[{"token":"x","type":"t","url":"u","source":"content"}]"#;
        let signature: Signature = signing.sign(body);
        let header = STANDARD.encode(signature.to_der().as_bytes());
        assert_eq!(reporters.verify(Some("k1"), Some(&header), body), Ok(()));
        assert_eq!(
            reporters.verify(Some("k1"), Some(&header), b"[]"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            reporters.verify(Some("k2"), Some(&header), body),
            Err(SignatureError::UnknownKey)
        );
        assert_eq!(
            reporters.verify(Some("k1"), Some("not base64!"), body),
            Err(SignatureError::Malformed)
        );
        assert!(matches!(
            reporters.verify(None, Some(&header), body),
            Err(SignatureError::MissingHeader(_))
        ));
    }

    #[test]
    fn refuses_a_bad_key_file() {
        assert!(LeakReporters::parse("{}").is_err());
        assert!(
            LeakReporters::parse(r#"{"public_keys":[{"key_identifier":"a","key":"nope"}]}"#)
                .is_err()
        );
    }
}
