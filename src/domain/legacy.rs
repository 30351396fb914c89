//! Keys made by another system and imported (issue 19 §3): their plaintext in that system's
//! format, or the plain SHA-256 digest it stored, and what latchkey's `digest` column holds for
//! each until the key's first verification rewrites it to the peppered HMAC.

use std::fmt;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::key::{KeyDigest, KeyFormatError, KeyHasher};

/// Shortest plaintext accepted for an imported key: shorter ones are guessable whatever system
/// made them.
pub const MIN_FOREIGN_KEY_LEN: usize = 16;
/// Longest plaintext accepted for an imported key (and looked up as one at verification).
pub const MAX_FOREIGN_KEY_LEN: usize = 256;

/// What a key's stored `digest` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestKind {
    /// A key in latchkey's format: `HMAC-SHA256(pepper, key)`.
    Hmac,
    /// A key in another system's format, digested like latchkey's own.
    LegacyHmac,
    /// A key in another system's format whose imported `SHA-256(key)` is still stored: the
    /// first successful verification replaces it with the HMAC digest.
    LegacySha256,
}

impl DigestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hmac => "hmac",
            Self::LegacyHmac => "legacy_hmac",
            Self::LegacySha256 => "legacy_sha256",
        }
    }

    /// A stored value; anything unknown is read as latchkey's own, which verification only
    /// reaches by a valid check tag.
    pub fn from_stored(s: &str) -> Self {
        match s {
            "legacy_hmac" => Self::LegacyHmac,
            "legacy_sha256" => Self::LegacySha256,
            _ => Self::Hmac,
        }
    }

    pub fn is_legacy(self) -> bool {
        self != Self::Hmac
    }
}

/// A presented value that is not in latchkey's format but may be an imported key: 16 to 256
/// printable ASCII characters without spaces. A value with latchkey's shape and a wrong check
/// tag is never one (it is a forgery or a typo and costs no I/O), so a foreign key of exactly
/// that shape cannot be imported as plaintext.
#[derive(Clone, Copy)]
pub struct ForeignKey<'a>(&'a str);

impl<'a> ForeignKey<'a> {
    /// `None` when `raw` is in latchkey's format (valid or forged) or cannot be a key at all.
    pub fn parse(hasher: &KeyHasher, raw: &'a str) -> Option<Self> {
        let printable = raw.bytes().all(|b| b.is_ascii_graphic());
        if !(MIN_FOREIGN_KEY_LEN..=MAX_FOREIGN_KEY_LEN).contains(&raw.len()) || !printable {
            return None;
        }
        match hasher.parse(raw) {
            Ok(_) | Err(KeyFormatError::BadCheck) => None,
            Err(_) => Some(Self(raw)),
        }
    }

    pub(super) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// `SHA-256(key)`: how crates.io, GitLab and Unkey store keys, and what an import of a
    /// digest holds until the first verification.
    pub fn sha256(&self) -> KeyDigest {
        sha256(self.0.as_bytes())
    }

    /// The first characters, for display (as `start` of a latchkey key): at most 8, and never
    /// more than a quarter of the key.
    pub fn start(&self) -> String {
        self.0.chars().take((self.0.len() / 4).min(8)).collect()
    }
}

impl fmt::Debug for ForeignKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ForeignKey(<redacted>)")
    }
}

fn sha256(bytes: &[u8]) -> KeyDigest {
    let digest: [u8; 32] = Sha256::digest(bytes).into();
    KeyDigest::from_slice(&digest).expect("SHA-256 digests are 32 bytes")
}

/// Why an imported digest was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LegacyDigestError {
    #[error("must be 64 hexadecimal characters (a SHA-256 digest)")]
    Hex,
    #[error("must be the base64 of a SHA-256 digest (32 bytes)")]
    Base64,
}

/// `sha256_hex`: 64 hex digits, either case.
pub fn parse_sha256_hex(s: &str) -> Result<KeyDigest, LegacyDigestError> {
    let bytes = hex::decode(s).map_err(|_| LegacyDigestError::Hex)?;
    KeyDigest::from_slice(&bytes).ok_or(LegacyDigestError::Hex)
}

/// `sha256_base64`: standard or URL-safe base64, padded or not (Unkey stores standard, padded).
pub fn parse_sha256_base64(s: &str) -> Result<KeyDigest, LegacyDigestError> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let bytes = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(s).ok())
        .ok_or(LegacyDigestError::Base64)?;
    KeyDigest::from_slice(&bytes).ok_or(LegacyDigestError::Base64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::key::KeyPrefix;
    use crate::domain::secrets::MasterKey;

    fn hasher() -> KeyHasher {
        KeyHasher::new(&MasterKey::generate().derive(), &[])
    }

    #[test]
    fn latchkey_keys_and_forgeries_of_their_shape_are_not_foreign() {
        let hasher = hasher();
        let key = hasher.generate(&KeyPrefix::parse("acme_live").unwrap()).key;
        let key = key.expose_secret();
        assert!(ForeignKey::parse(&hasher, key).is_none());
        let mut forged = key.to_owned();
        forged.replace_range(forged.len() - 1.., "0");
        forged.replace_range(forged.len() - 2..forged.len() - 1, "0");
        assert!(ForeignKey::parse(&hasher, &forged).is_none());
    }

    #[test]
    fn other_formats_are_foreign_within_bounds() {
        let hasher = hasher();
        for key in [
            "glpat-xxxxxxxxxxxxxxxxxxxx",
            "cioAbCdEfGhIjKlMnOpQrStUvWxYz012345",
            "uk_3ZkPsQkTvTcUQr4hdR1n8B",
        ] {
            assert!(ForeignKey::parse(&hasher, key).is_some(), "{key}");
        }
        for key in ["short_key", "has a space in it ok", &"x".repeat(257), ""] {
            assert!(ForeignKey::parse(&hasher, key).is_none(), "{key}");
        }
    }

    #[test]
    fn digests_parse_in_both_encodings() {
        let key = ForeignKey::parse(&hasher(), "uk_3ZkPsQkTvTcUQr4hdR1n8B").unwrap();
        let hex = key.sha256().to_hex();
        assert_eq!(parse_sha256_hex(&hex).unwrap(), key.sha256());
        assert_eq!(parse_sha256_hex(&hex.to_uppercase()).unwrap(), key.sha256());
        let b64 = base64::engine::general_purpose::STANDARD.encode(key.sha256().as_bytes());
        assert_eq!(parse_sha256_base64(&b64).unwrap(), key.sha256());
        assert_eq!(
            parse_sha256_base64(b64.trim_end_matches('=')).unwrap(),
            key.sha256()
        );
        assert_eq!(parse_sha256_hex("abc"), Err(LegacyDigestError::Hex));
        assert_eq!(parse_sha256_base64("abc="), Err(LegacyDigestError::Base64));
        assert_eq!(format!("{key:?}"), "ForeignKey(<redacted>)");
        assert_eq!(key.start(), "uk_3Zk");
    }
}
