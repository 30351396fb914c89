//! The server master key and the purpose-bound secrets derived from it with HKDF-SHA256.

use std::fmt;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hkdf::Hkdf;
use rand::TryRngCore as _;
use rand::rngs::OsRng;
use secrecy::zeroize::{Zeroize, Zeroizing};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::{Digest, Sha256};

/// Minimum master key length in bytes (256 bits).
pub const MIN_MASTER_KEY_BYTES: usize = 32;

/// Length of a freshly generated master key in bytes.
const GENERATED_MASTER_KEY_BYTES: usize = 32;

/// HKDF salt; bumping it re-keys everything, so it is versioned like the info strings.
const HKDF_SALT: &[u8] = b"latchkey-v1";

const INFO_PEPPER: &[u8] = b"latchkey/pepper/v1";
const INFO_CHECK_TAG: &[u8] = b"latchkey/check-tag/v1";
const INFO_SESSION: &[u8] = b"latchkey/session/v1";
const INFO_CSRF: &[u8] = b"latchkey/csrf/v1";
const INFO_SIGNING_KEY_ENCRYPTION: &[u8] = b"latchkey/signing-key-encryption/v1";
const INFO_KEY_ID: &[u8] = b"latchkey/key-id/v1";
const INFO_REVEAL: &[u8] = b"latchkey/reveal/v1";
/// AES-GCM's nonce, stored in front of each sealed message.
const NONCE_LEN: usize = 12;

/// Operators paste keys from many tools, so padding is optional on decode.
const BASE64_CONFIG: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const BASE64_STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, BASE64_CONFIG);
const BASE64_URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, BASE64_CONFIG);

/// Why a master key string was refused. Messages never include the key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MasterKeyError {
    #[error("master key is {bytes} bytes long; at least {MIN_MASTER_KEY_BYTES} bytes are required")]
    TooShort { bytes: usize },
    #[error("master key is neither hex nor base64 (standard or URL-safe)")]
    NotHexOrBase64,
}

/// The root secret every other server secret is derived from. Never logged.
pub struct MasterKey(SecretSlice<u8>);

impl MasterKey {
    /// Parses a master key given as hex or base64 (standard or URL-safe, padded or not).
    ///
    /// A string made only of hex digits with an even length is always read as hex, so a
    /// too-short hex key is reported as too short rather than silently re-read as base64.
    pub fn parse(s: &str) -> Result<MasterKey, MasterKeyError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(MasterKeyError::NotHexOrBase64);
        }
        let looks_hex = s.len().is_multiple_of(2) && s.bytes().all(|b| b.is_ascii_hexdigit());
        let bytes = if looks_hex {
            hex::decode(s).map_err(|_| MasterKeyError::NotHexOrBase64)?
        } else {
            BASE64_STANDARD
                .decode(s)
                .or_else(|_| BASE64_URL_SAFE.decode(s))
                .map_err(|_| MasterKeyError::NotHexOrBase64)?
        };
        Self::from_bytes(bytes)
    }

    /// Wraps raw key bytes, refusing keys shorter than [`MIN_MASTER_KEY_BYTES`].
    pub fn from_bytes(mut bytes: Vec<u8>) -> Result<MasterKey, MasterKeyError> {
        if bytes.len() < MIN_MASTER_KEY_BYTES {
            let len = bytes.len();
            bytes.zeroize();
            return Err(MasterKeyError::TooShort { bytes: len });
        }
        Ok(MasterKey(SecretSlice::from(bytes)))
    }

    /// Generates a new random master key from the OS CSPRNG.
    ///
    /// # Panics
    /// If the operating system cannot provide randomness; no secret can be made safely then.
    pub fn generate() -> MasterKey {
        let mut bytes = vec![0u8; GENERATED_MASTER_KEY_BYTES];
        OsRng
            .try_fill_bytes(&mut bytes)
            .expect("the OS CSPRNG must be available to generate a master key");
        MasterKey(SecretSlice::from(bytes))
    }

    /// Lowercase hex encoding, for writing a generated key to a file. Handle with care.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.expose_secret())
    }

    /// Derives every purpose-bound secret. Deterministic for a given master key.
    pub fn derive(&self) -> DerivedSecrets {
        DerivedSecrets {
            pepper: self.expand(INFO_PEPPER),
            check_tag: self.expand(INFO_CHECK_TAG),
            session: self.expand(INFO_SESSION),
            csrf: self.expand(INFO_CSRF),
            signing_key_encryption: self.expand(INFO_SIGNING_KEY_ENCRYPTION),
            reveal: self.expand(INFO_REVEAL),
        }
    }

    /// A short public identifier of this master key (8 hex chars), safe to log.
    ///
    /// It hashes a dedicated HKDF output, so it reveals nothing about the derived secrets.
    pub fn key_id(&self) -> String {
        let material = self.expand(INFO_KEY_ID);
        let digest = Sha256::digest(material.expose());
        let mut id = hex::encode(&digest[..4]);
        id.truncate(8);
        id
    }

    fn expand(&self, info: &[u8]) -> SecretKey32 {
        let hk = Hkdf::<Sha256>::new(Some(HKDF_SALT), self.0.expose_secret());
        let mut out = [0u8; 32];
        hk.expand(info, &mut out)
            .expect("32 bytes is far below HKDF-SHA256's 255 * 32 byte output limit");
        SecretKey32(out)
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// A 256-bit secret key. Redacted in `Debug`, wiped from memory on drop.
#[derive(Clone)]
pub struct SecretKey32([u8; 32]);

impl SecretKey32 {
    /// The raw key bytes; use them only to key a MAC or cipher.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// Encrypts `msg` with AES-256-GCM under this key, bound to `aad` (what the message belongs
    /// to: it opens only with the same `aad`). A random nonce goes in front.
    pub fn seal(&self, aad: &[u8], msg: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng
            .try_fill_bytes(&mut nonce)
            .expect("the OS CSPRNG must be available to seal a secret");
        let ciphertext = Aes256Gcm::new(&self.0.into())
            .encrypt(Nonce::from_slice(&nonce), Payload { msg, aad })
            .expect("AES-GCM encrypts any message shorter than 64 GiB");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        out
    }

    /// Decrypts what [`SecretKey32::seal`] made with this key and `aad`; `None` if it was made
    /// with another key or `aad`, or changed since.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if sealed.len() <= NONCE_LEN {
            return None;
        }
        let (nonce, msg) = sealed.split_at(NONCE_LEN);
        Aes256Gcm::new(&self.0.into())
            .decrypt(Nonce::from_slice(nonce), Payload { msg, aad })
            .ok()
            .map(Zeroizing::new)
    }
}

impl fmt::Debug for SecretKey32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey32(<redacted>)")
    }
}

impl Drop for SecretKey32 {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// The secrets derived from one master key, one per purpose, so a leak of one does not expose the others.
#[derive(Debug, Clone)]
pub struct DerivedSecrets {
    /// HMAC key for API key digests at rest.
    pub pepper: SecretKey32,
    /// HMAC key for the check tag embedded in every API key.
    pub check_tag: SecretKey32,
    /// Key for dashboard session tokens.
    pub session: SecretKey32,
    /// Key for CSRF tokens.
    pub csrf: SecretKey32,
    /// Key that encrypts JWT signing keys at rest.
    pub signing_key_encryption: SecretKey32,
    /// Key that seals a new key's secret into the browser cookie that carries it, once, to the
    /// page that shows it.
    pub reveal: SecretKey32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_message_opens_only_with_its_key_and_associated_data() {
        let derived = MasterKey::parse(HEX_KEY).unwrap().derive();
        let key = &derived.reveal;
        let sealed = key.seal(b"session-1", b"lk_live_secret");
        assert_eq!(
            key.open(b"session-1", &sealed)
                .as_deref()
                .map(Vec::as_slice),
            Some(&b"lk_live_secret"[..])
        );
        assert_ne!(
            sealed,
            key.seal(b"session-1", b"lk_live_secret"),
            "a new nonce each time"
        );
        assert!(key.open(b"session-2", &sealed).is_none(), "another session");
        assert!(
            derived.csrf.open(b"session-1", &sealed).is_none(),
            "another key"
        );
        let mut changed = sealed.clone();
        *changed.last_mut().unwrap() ^= 1;
        assert!(
            key.open(b"session-1", &changed).is_none(),
            "changed in transit"
        );
        assert!(key.open(b"session-1", &sealed[..12]).is_none(), "cut short");
    }

    const HEX_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn bytes_of(key: &MasterKey) -> Vec<u8> {
        key.0.expose_secret().to_vec()
    }

    #[test]
    fn parses_hex() {
        let key = MasterKey::parse(HEX_KEY).unwrap();
        assert_eq!(bytes_of(&key), (0u8..32).collect::<Vec<_>>());
        assert_eq!(key.to_hex(), HEX_KEY);
    }

    #[test]
    fn parses_uppercase_hex_and_trims_whitespace() {
        let key = MasterKey::parse(&format!("  {}\n", HEX_KEY.to_uppercase())).unwrap();
        assert_eq!(key.to_hex(), HEX_KEY);
    }

    #[test]
    fn parses_base64_variants() {
        let raw: Vec<u8> = (200u8..240).collect(); // 40 bytes, produces `+`/`/` in standard base64
        for engine in [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::STANDARD_NO_PAD,
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ] {
            let encoded = engine.encode(&raw);
            let key = MasterKey::parse(&encoded).unwrap();
            assert_eq!(bytes_of(&key), raw, "{encoded}");
        }
    }

    #[test]
    fn rejects_too_short() {
        assert_eq!(
            MasterKey::parse(&HEX_KEY[..62]).unwrap_err(),
            MasterKeyError::TooShort { bytes: 31 }
        );
        let short_b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 31]);
        assert_eq!(
            MasterKey::parse(&short_b64).unwrap_err(),
            MasterKeyError::TooShort { bytes: 31 }
        );
        assert_eq!(
            MasterKey::from_bytes(vec![1; 16]).unwrap_err(),
            MasterKeyError::TooShort { bytes: 16 }
        );
    }

    #[test]
    fn rejects_garbage() {
        for input in [
            "",
            "   ",
            "not a key!",
            "zz",
            "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@",
        ] {
            assert_eq!(
                MasterKey::parse(input).unwrap_err(),
                MasterKeyError::NotHexOrBase64,
                "{input:?}"
            );
        }
    }

    #[test]
    fn generate_gives_distinct_32_byte_keys() {
        let a = MasterKey::generate();
        let b = MasterKey::generate();
        assert_eq!(bytes_of(&a).len(), 32);
        assert_ne!(bytes_of(&a), bytes_of(&b));
        // A written-out key reads back as the same key.
        let again = MasterKey::parse(&a.to_hex()).unwrap();
        assert_eq!(bytes_of(&again), bytes_of(&a));
    }

    #[test]
    fn derivation_is_deterministic_and_distinct_per_purpose() {
        let key = MasterKey::parse(HEX_KEY).unwrap();
        let one = key.derive();
        let two = MasterKey::parse(HEX_KEY).unwrap().derive();
        let all = |d: &DerivedSecrets| {
            [
                *d.pepper.expose(),
                *d.check_tag.expose(),
                *d.session.expose(),
                *d.csrf.expose(),
                *d.signing_key_encryption.expose(),
            ]
        };
        assert_eq!(all(&one), all(&two));
        let secrets = all(&one);
        for i in 0..secrets.len() {
            for j in i + 1..secrets.len() {
                assert_ne!(secrets[i], secrets[j], "purposes {i} and {j} share a key");
            }
        }
        let other = MasterKey::generate().derive();
        assert_ne!(one.pepper.expose(), other.pepper.expose());
    }

    /// Pinned so a change to the derivation (which would invalidate every stored digest) is caught.
    /// The values were computed independently with Python's `hmac`/`hashlib` (RFC 5869 HKDF).
    #[test]
    fn derivation_known_answers() {
        let key = MasterKey::parse(HEX_KEY).unwrap();
        let d = key.derive();
        assert_eq!(hex::encode(d.pepper.expose()), PEPPER_KAT);
        assert_eq!(hex::encode(d.check_tag.expose()), CHECK_TAG_KAT);
        assert_eq!(key.key_id(), KEY_ID_KAT);
    }

    const PEPPER_KAT: &str = "11d63df5997cb8a640de5ffb980e5682931aa2f98ff06b881fa9f3db0075e00a";
    const CHECK_TAG_KAT: &str = "21d68a3e7a045ec7afef7e71d3021d878d2388ed3913081049b36570c3b8b04f";
    const KEY_ID_KAT: &str = "17d2abd2";

    #[test]
    fn key_id_is_short_stable_hex_and_not_a_derived_secret() {
        let key = MasterKey::parse(HEX_KEY).unwrap();
        let id = key.key_id();
        assert_eq!(id.len(), 8);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(id, MasterKey::parse(HEX_KEY).unwrap().key_id());
        assert_ne!(id, MasterKey::generate().key_id());
        let d = key.derive();
        assert!(!hex::encode(d.pepper.expose()).starts_with(&id));
    }

    #[test]
    fn debug_redacts() {
        let key = MasterKey::parse(HEX_KEY).unwrap();
        assert_eq!(format!("{key:?}"), "MasterKey(<redacted>)");
        let d = key.derive();
        let shown = format!("{d:?} {:#?}", d.pepper);
        assert!(shown.contains("<redacted>"));
        for secret in [
            &d.pepper,
            &d.check_tag,
            &d.session,
            &d.csrf,
            &d.signing_key_encryption,
        ] {
            assert!(!shown.contains(&hex::encode(secret.expose())));
            assert!(!shown.contains(&format!("{:?}", secret.expose())));
        }
        assert!(!shown.contains("0a0b0c"));
    }
}
