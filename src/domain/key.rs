//! API key format (`{prefix}_{secret}{check}`), its keyed check tag, and the peppered digest stored at rest.
//!
//! See DESIGN §4. The check tag lets a forged key of the right shape be refused without any
//! cache or database I/O; the digest is what the store indexes.

use std::fmt;
use std::hash::{Hash, Hasher};

use hmac::{Hmac, Mac};
use rand::TryRngCore as _;
use rand::rngs::OsRng;
use secrecy::zeroize::Zeroize;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

use super::legacy::ForeignKey;
use super::secrets::{DerivedSecrets, SecretKey32};

/// Number of base62 characters in the random secret (32 × log2(62) ≈ 190.5 bits).
pub const SECRET_LEN: usize = 32;
/// Number of base62 characters in the check tag (log2(62^6) ≈ 35.7 bits).
pub const CHECK_LEN: usize = 6;
/// Upper bound on a well-formed key's length; longer input is refused before any other work.
pub const MAX_KEY_LEN: usize = 64;
/// Shortest allowed keyspace prefix.
pub const MIN_PREFIX_LEN: usize = 2;
/// Longest allowed keyspace prefix.
pub const MAX_PREFIX_LEN: usize = 24;

/// Characters after the prefix separator: secret then check tag.
const BODY_LEN: usize = SECRET_LEN + CHECK_LEN;
/// Secret characters shown in [`GeneratedKey::start`] and [`ParsedKey::start`].
const START_SECRET_CHARS: usize = 4;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// 62^CHECK_LEN; a u64 reduced modulo this has negligible bias (62^6 ≪ 2^64).
const CHECK_SPACE: u64 = 62u64.pow(CHECK_LEN as u32);
/// Largest multiple of 62 that fits a byte; bytes at or above it are rejected to avoid modulo bias.
const BASE62_ACCEPT_BELOW: u8 = 248;

const _: () = assert!(MAX_PREFIX_LEN + 1 + BODY_LEN <= MAX_KEY_LEN);

type HmacSha256 = Hmac<Sha256>;

/// Why a keyspace prefix was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    #[error("prefix must be {MIN_PREFIX_LEN} to {MAX_PREFIX_LEN} characters long")]
    Length,
    #[error("prefix may contain only lowercase letters, digits and underscores")]
    InvalidCharacter,
    #[error("prefix must start with a lowercase letter")]
    MustStartWithLetter,
    #[error("prefix must not end with an underscore")]
    TrailingUnderscore,
    #[error("prefix must not contain two underscores in a row")]
    DoubleUnderscore,
}

/// A keyspace prefix such as `acme_live`: 2–24 of `[a-z0-9_]`, starting with a letter,
/// with no trailing or doubled underscore.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyPrefix(String);

impl KeyPrefix {
    pub fn parse(s: &str) -> Result<KeyPrefix, PrefixError> {
        validate_prefix(s)?;
        Ok(KeyPrefix(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for KeyPrefix {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

fn validate_prefix(s: &str) -> Result<(), PrefixError> {
    let bytes = s.as_bytes();
    if !bytes
        .iter()
        .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(PrefixError::InvalidCharacter);
    }
    if !(MIN_PREFIX_LEN..=MAX_PREFIX_LEN).contains(&bytes.len()) {
        return Err(PrefixError::Length);
    }
    if !bytes[0].is_ascii_lowercase() {
        return Err(PrefixError::MustStartWithLetter);
    }
    if bytes.ends_with(b"_") {
        return Err(PrefixError::TrailingUnderscore);
    }
    if bytes.windows(2).any(|w| w == b"__") {
        return Err(PrefixError::DoubleUnderscore);
    }
    Ok(())
}

/// Why a presented key was refused. Messages never include the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    #[error("key is empty")]
    Empty,
    #[error("key is longer than {MAX_KEY_LEN} characters")]
    TooLong,
    #[error("key contains a character outside [A-Za-z0-9_]")]
    InvalidCharacter,
    #[error("key has no `_` between prefix and secret")]
    MissingSeparator,
    #[error("key prefix is malformed")]
    InvalidPrefix,
    #[error("key secret has the wrong length")]
    InvalidLength,
    #[error("key check tag does not match")]
    BadCheck,
}

/// A full plaintext key. It exists only in the create/rotate response; it has no `Display`
/// and its `Debug` is redacted.
pub struct PlainKey(SecretString);

impl PlainKey {
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }

    /// The secret itself, for the sealed cookie that carries it to the one page that shows it
    /// (`routes::dashboard::reveal`).
    pub fn into_secret(self) -> SecretString {
        self.0
    }

    /// For `#[serde(serialize_with)]` on the one response field that shows a new key: the only
    /// way a `PlainKey` is serialised.
    pub fn serialize_exposed<S: serde::Serializer>(
        key: &PlainKey,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(key.expose_secret())
    }

    /// [`PlainKey::serialize_exposed`] for a key that may be absent.
    pub fn serialize_exposed_opt<S: serde::Serializer>(
        key: &Option<PlainKey>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match key {
            Some(key) => s.serialize_str(key.expose_secret()),
            None => s.serialize_none(),
        }
    }
}

impl fmt::Debug for PlainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlainKey(<redacted>)")
    }
}

/// `HMAC-SHA256(pepper, key)`: what the store indexes. Compared in constant time.
#[derive(Clone, Copy)]
pub struct KeyDigest([u8; 32]);

impl KeyDigest {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Rebuilds a digest read from storage; `None` unless `bytes` is exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(KeyDigest)
    }

    /// Lowercase hex, e.g. for cache keys and invalidation messages.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn ct_eq(&self, other: &KeyDigest) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl PartialEq for KeyDigest {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other)
    }
}

impl Eq for KeyDigest {}

impl Hash for KeyDigest {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyDigest({}…)", hex::encode(&self.0[..4]))
    }
}

/// A freshly minted key: the plaintext to hand out once, and what to store.
#[derive(Debug)]
pub struct GeneratedKey {
    pub key: PlainKey,
    pub digest: KeyDigest,
    /// Prefix, `_` and the first 4 secret characters, for display.
    pub start: String,
}

/// A presented key whose shape and check tag are valid. Borrows the caller's string.
#[derive(Clone, Copy)]
pub struct ParsedKey<'a> {
    raw: &'a str,
    /// Byte index of the `_` that separates prefix and body.
    separator: usize,
}

impl ParsedKey<'_> {
    pub fn prefix(&self) -> &str {
        &self.raw[..self.separator]
    }

    /// Prefix, `_` and the first 4 secret characters, for display.
    pub fn start(&self) -> String {
        self.raw[..self.separator + 1 + START_SECRET_CHARS].to_owned()
    }
}

impl fmt::Debug for ParsedKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedKey")
            .field("prefix", &self.prefix())
            .field("secret", &format_args!("<redacted>"))
            .finish()
    }
}

/// Mints, checks and digests keys with the current secrets, and still accepts keys made under
/// previous master keys until they are retired.
#[derive(Clone)]
pub struct KeyHasher {
    current_pepper: KeyedMac,
    current_check: KeyedMac,
    previous_peppers: Vec<KeyedMac>,
    previous_checks: Vec<KeyedMac>,
}

impl KeyHasher {
    pub fn new(current: &DerivedSecrets, previous: &[DerivedSecrets]) -> KeyHasher {
        KeyHasher {
            current_pepper: KeyedMac::new(&current.pepper),
            current_check: KeyedMac::new(&current.check_tag),
            previous_peppers: previous.iter().map(|d| KeyedMac::new(&d.pepper)).collect(),
            previous_checks: previous
                .iter()
                .map(|d| KeyedMac::new(&d.check_tag))
                .collect(),
        }
    }

    /// Mints a new key under the current secrets.
    ///
    /// # Panics
    /// If the operating system cannot provide randomness; no key can be made safely then.
    pub fn generate(&self, prefix: &KeyPrefix) -> GeneratedKey {
        // Sized up front so the buffer holding the secret is never reallocated (and copied).
        let mut key = String::with_capacity(MAX_KEY_LEN);
        key.push_str(prefix.as_str());
        key.push('_');
        let secret_at = key.len();
        push_random_base62(&mut key, SECRET_LEN);
        let start = key[..secret_at + START_SECRET_CHARS].to_owned();
        let check = check_tag(&self.current_check, key.as_bytes());
        for &c in &check {
            key.push(char::from(c));
        }
        let digest = hmac_digest(&self.current_pepper, key.as_bytes());
        GeneratedKey {
            key: PlainKey(SecretString::from(key)),
            digest,
            start,
        }
    }

    /// Checks a presented key's shape and check tag without any I/O.
    ///
    /// The prefix is split at the last underscore, since prefixes may contain `_` and the
    /// base62 body never does.
    pub fn parse<'a>(&self, raw: &'a str) -> Result<ParsedKey<'a>, KeyFormatError> {
        if raw.is_empty() {
            return Err(KeyFormatError::Empty);
        }
        if raw.len() > MAX_KEY_LEN {
            return Err(KeyFormatError::TooLong);
        }
        if !raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(KeyFormatError::InvalidCharacter);
        }
        let separator = raw.rfind('_').ok_or(KeyFormatError::MissingSeparator)?;
        validate_prefix(&raw[..separator]).map_err(|_| KeyFormatError::InvalidPrefix)?;
        if raw.len() - separator - 1 != BODY_LEN {
            return Err(KeyFormatError::InvalidLength);
        }
        let (signed, given) = raw.as_bytes().split_at(raw.len() - CHECK_LEN);
        // Every live check key is tried, so timing does not reveal which one matched.
        let mut matched = Choice::from(0);
        for check_key in std::iter::once(&self.current_check).chain(&self.previous_checks) {
            matched |= check_tag(check_key, signed).ct_eq(given);
        }
        if !bool::from(matched) {
            return Err(KeyFormatError::BadCheck);
        }
        Ok(ParsedKey { raw, separator })
    }

    /// The digest under the current pepper: what a newly stored key is indexed by.
    pub fn digest(&self, key: &ParsedKey<'_>) -> KeyDigest {
        hmac_digest(&self.current_pepper, key.raw.as_bytes())
    }

    /// The digest under every live pepper, current first; a lookup tries each in turn.
    pub fn digests(&self, key: &ParsedKey<'_>) -> Vec<KeyDigest> {
        std::iter::once(&self.current_pepper)
            .chain(&self.previous_peppers)
            .map(|pepper| hmac_digest(pepper, key.raw.as_bytes()))
            .collect()
    }

    /// The digests of a presented value, or none when it is not a well-formed key of this
    /// deployment: such a value cannot exist, so looking it up would only cost I/O.
    pub fn digests_of(&self, raw: &str) -> Vec<KeyDigest> {
        self.parse(raw)
            .map(|parsed| self.digests(&parsed))
            .unwrap_or_default()
    }
}

impl KeyHasher {
    /// An imported key's digest under the current pepper: what it is stored under (once
    /// upgraded, for an imported SHA-256 digest).
    pub fn foreign_digest(&self, key: &ForeignKey<'_>) -> KeyDigest {
        hmac_digest(&self.current_pepper, key.as_bytes())
    }

    /// [`KeyHasher::foreign_digest`] under every live pepper, current first.
    pub fn foreign_digests(&self, key: &ForeignKey<'_>) -> Vec<KeyDigest> {
        std::iter::once(&self.current_pepper)
            .chain(&self.previous_peppers)
            .map(|pepper| hmac_digest(pepper, key.as_bytes()))
            .collect()
    }
}

impl KeyHasher {
    /// Every key in `text` whose check tag is valid under a live secret, in order: what a scan
    /// of logs or pasted text reports.
    ///
    /// Shape alone is not evidence: a random base64url string (a JWK thumbprint, a digest) has
    /// a key's shape about once in 800, but also carries a valid tag only once in 62^6 of those.
    /// So a key is found wherever it sits, whatever precedes or follows it (a key glued to text
    /// or to another key included): its body has a fixed length, and the tag decides.
    pub fn find_in<'a>(&self, text: &'a str) -> Vec<ParsedKey<'a>> {
        let bytes = text.as_bytes();
        let mut found = Vec::new();
        let mut after_last = 0;
        for separator in (0..bytes.len()).filter(|&i| bytes[i] == b'_') {
            let body_end = separator + 1 + BODY_LEN;
            let is_body = bytes
                .get(separator + 1..body_end)
                .is_some_and(|body| body.iter().all(u8::is_ascii_alphanumeric));
            if !is_body || separator < MIN_PREFIX_LEN {
                continue;
            }
            // The longest prefix first; a start inside a key already found is not another key.
            let earliest = separator.saturating_sub(MAX_PREFIX_LEN).max(after_last);
            let key = (earliest..=separator.saturating_sub(MIN_PREFIX_LEN))
                .filter(|&start| bytes[start].is_ascii_lowercase())
                .find_map(|start| self.parse(&text[start..body_end]).ok());
            if let Some(key) = key {
                after_last = body_end;
                found.push(key);
            }
        }
        found
    }
}

impl fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyHasher")
            .field("previous_versions", &self.previous_peppers.len())
            .finish_non_exhaustive()
    }
}

/// HMAC-SHA256 under one key, keyed once: the key's inner and outer padded blocks are hashed
/// when the hasher is built, and each MAC clones that state and hashes only the message: two
/// SHA-256 blocks fewer per call (two instead of four for a key of up to 55 bytes).
///
/// The keyed state computes the same MACs as the key, so it is as secret; like the key it lives
/// as long as the hasher. Keying per call did not avoid it either: every call rebuilt this same
/// state and dropped it unwiped (the `hmac` crate does not zeroize).
#[derive(Clone)]
struct KeyedMac(HmacSha256);

impl KeyedMac {
    fn new(key: &SecretKey32) -> Self {
        Self(HmacSha256::new_from_slice(key.expose()).expect("HMAC accepts keys of any length"))
    }

    fn mac(&self, message: &[u8]) -> [u8; 32] {
        let mut mac = self.0.clone();
        mac.update(message);
        mac.finalize().into_bytes().into()
    }
}

fn hmac_digest(pepper: &KeyedMac, message: &[u8]) -> KeyDigest {
    KeyDigest(pepper.mac(message))
}

/// First 8 bytes of `HMAC-SHA256(check_key, message)`, big-endian, mod 62^6, as 6 base62 chars.
fn check_tag(check_key: &KeyedMac, message: &[u8]) -> [u8; CHECK_LEN] {
    let tag = check_key.mac(message);
    let mut first = [0u8; 8];
    first.copy_from_slice(&tag[..8]);
    let mut n = u64::from_be_bytes(first) % CHECK_SPACE;
    let mut out = [b'0'; CHECK_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// Appends `count` uniformly random base62 characters from the OS CSPRNG (rejection sampling).
fn push_random_base62(out: &mut String, count: usize) {
    let mut buf = [0u8; 64];
    let mut pushed = 0;
    while pushed < count {
        OsRng
            .try_fill_bytes(&mut buf)
            .expect("the OS CSPRNG must be available to generate a key");
        for &b in buf.iter().filter(|&&b| b < BASE62_ACCEPT_BELOW) {
            out.push(char::from(BASE62[usize::from(b % 62)]));
            pushed += 1;
            if pushed == count {
                break;
            }
        }
    }
    buf.zeroize();
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;
    use crate::domain::secrets::MasterKey;

    const HEX_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn secrets(bytes: [u8; 32]) -> DerivedSecrets {
        MasterKey::from_bytes(bytes.to_vec()).unwrap().derive()
    }

    fn hasher() -> KeyHasher {
        KeyHasher::new(&MasterKey::parse(HEX_KEY).unwrap().derive(), &[])
    }

    fn prefix(s: &str) -> KeyPrefix {
        KeyPrefix::parse(s).unwrap()
    }

    fn is_base62(s: &str) -> bool {
        s.bytes().all(|b| b.is_ascii_alphanumeric())
    }

    #[test]
    fn prefix_rules() {
        for ok in [
            "ab",
            "acme_live",
            "a1",
            "sk_test_2",
            "abcdefghijklmnopqrstuvwx",
        ] {
            assert_eq!(KeyPrefix::parse(ok).unwrap().as_str(), ok);
        }
        let cases = [
            ("", PrefixError::Length),
            ("a", PrefixError::Length),
            ("abcdefghijklmnopqrstuvwxy", PrefixError::Length),
            ("Acme", PrefixError::InvalidCharacter),
            ("ac-me", PrefixError::InvalidCharacter),
            ("acmé", PrefixError::InvalidCharacter),
            ("ac me", PrefixError::InvalidCharacter),
            ("1acme", PrefixError::MustStartWithLetter),
            ("_acme", PrefixError::MustStartWithLetter),
            ("acme_", PrefixError::TrailingUnderscore),
            ("acme__live", PrefixError::DoubleUnderscore),
        ];
        for (input, err) in cases {
            assert_eq!(KeyPrefix::parse(input), Err(err), "{input:?}");
        }
        assert_eq!(prefix("acme_live").to_string(), "acme_live");
    }

    #[test]
    fn generated_key_has_the_documented_shape() {
        let g = hasher().generate(&prefix("acme_live"));
        let key = g.key.expose_secret();
        let body = key.strip_prefix("acme_live_").unwrap();
        assert_eq!(body.len(), SECRET_LEN + CHECK_LEN);
        assert!(is_base62(body));
        assert_eq!(g.start, &key[..14]);
        assert!(g.start.starts_with("acme_live_"));
        assert!(key.len() <= MAX_KEY_LEN);
    }

    #[test]
    fn secrets_are_distinct_and_use_the_whole_alphabet() {
        let h = hasher();
        let keys: Vec<String> = (0..200)
            .map(|_| h.generate(&prefix("ab")).key.expose_secret()[3..3 + SECRET_LEN].to_owned())
            .collect();
        assert_eq!(keys.iter().collect::<HashSet<_>>().len(), keys.len());
        let seen: HashSet<u8> = keys.iter().flat_map(|k| k.bytes()).collect();
        // 6400 uniform draws over 62 symbols miss one with probability ~62·e^-103.
        assert_eq!(seen.len(), 62);
    }

    /// Cross-checked independently with Python's `hmac`/`hashlib`; pins the wire format and digest.
    #[test]
    fn known_answer() {
        let h = hasher();
        let key = "acme_live_0123456789ABCDEFGHIJKLMNOPQRSTUVqtK9b2";
        let parsed = h.parse(key).unwrap();
        assert_eq!(parsed.prefix(), "acme_live");
        assert_eq!(parsed.start(), "acme_live_0123");
        assert_eq!(
            h.digest(&parsed).to_hex(),
            "91b6de085f5e738505434377608c4ee33d7fa338990e59b4cd8daf502c46a445"
        );
        assert_eq!(
            check_tag(
                &KeyedMac::new(&MasterKey::parse(HEX_KEY).unwrap().derive().check_tag),
                b"acme_live_0123456789ABCDEFGHIJKLMNOPQRSTUV"
            ),
            *b"qtK9b2"
        );
    }

    #[test]
    fn parse_error_cases() {
        use KeyFormatError as E;
        let h = hasher();
        let good = h.generate(&prefix("acme_live"));
        let good = good.key.expose_secret();
        let body = &good["acme_live_".len()..];
        let cases: Vec<(String, E)> = vec![
            (String::new(), E::Empty),
            ("a".repeat(MAX_KEY_LEN + 1), E::TooLong),
            ("x".repeat(10_000), E::TooLong),
            (format!("{good}\0"), E::InvalidCharacter),
            (format!("acme_live_{}\n", &body[1..]), E::InvalidCharacter),
            (format!("acme_live_{}é", &body[2..]), E::InvalidCharacter),
            (format!("acme-live_{body}"), E::InvalidCharacter),
            (format!(" {good}"), E::InvalidCharacter),
            (format!("acmelive{body}"), E::MissingSeparator),
            (format!("Acme_{body}"), E::InvalidPrefix),
            (format!("_{body}"), E::InvalidPrefix),
            (format!("acme__{body}"), E::InvalidPrefix),
            (format!("acme_live_{}", &body[1..]), E::InvalidLength),
            (format!("{good}A"), E::InvalidLength),
            ("acme_live_".to_owned(), E::InvalidLength),
            (format!("acme_test_{body}"), E::BadCheck),
            (format!("acme_live_{}", "A".repeat(38)), E::BadCheck),
        ];
        for (input, err) in cases {
            assert_eq!(h.parse(&input).unwrap_err(), err, "{input:?}");
        }
    }

    #[test]
    fn every_single_character_substitution_is_rejected() {
        let h = hasher();
        let g = h.generate(&prefix("acme_live"));
        let key = g.key.expose_secret().as_bytes().to_vec();
        let alphabet: Vec<u8> = BASE62.iter().copied().chain([b'_']).collect();
        for i in 0..key.len() {
            for &c in alphabet.iter().filter(|&&c| c != key[i]) {
                let mut mutated = key.clone();
                mutated[i] = c;
                let mutated = String::from_utf8(mutated).unwrap();
                assert!(
                    h.parse(&mutated).is_err(),
                    "position {i} -> {}",
                    char::from(c)
                );
            }
        }
    }

    #[test]
    fn key_digest_semantics() {
        let a = KeyDigest([1; 32]);
        let mut b_bytes = [1; 32];
        b_bytes[31] = 2;
        let b = KeyDigest(b_bytes);
        assert!(a.ct_eq(&a.clone()));
        assert_eq!(a, KeyDigest::from_slice(&[1; 32]).unwrap());
        assert_ne!(a, b);
        assert!(KeyDigest::from_slice(&[1; 31]).is_none());
        assert!(KeyDigest::from_slice(&[1; 33]).is_none());
        let set: HashSet<KeyDigest> = [a, b, a].into_iter().collect();
        assert_eq!(set.len(), 2);
        assert_eq!(
            format!("{:?}", KeyDigest([0xab; 32])),
            "KeyDigest(abababab…)"
        );
    }

    #[test]
    fn a_value_that_is_no_key_has_no_digests() {
        let h = hasher();
        let g = h.generate(&prefix("acme_live"));
        assert_eq!(h.digests_of(g.key.expose_secret()), [g.digest]);
        let mut forged = g.key.expose_secret().to_owned();
        let last = forged.pop().unwrap();
        forged.push(if last == 'A' { 'B' } else { 'A' });
        let padded = format!(" {}", g.key.expose_secret());
        for raw in ["", "acme_live_short", &forged, &padded] {
            assert!(h.digests_of(raw).is_empty(), "{raw:?}");
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let h = hasher();
        let g = h.generate(&prefix("acme_live"));
        let secret = &g.key.expose_secret()["acme_live_".len()..];
        let parsed = h.parse(g.key.expose_secret()).unwrap();
        for shown in [
            format!("{:?}", g.key),
            format!("{g:?}"),
            format!("{g:#?}"),
            format!("{parsed:?}"),
            format!("{h:?}"),
        ] {
            assert!(!shown.contains(&secret[4..]), "{shown}");
        }
        assert_eq!(format!("{:?}", g.key), "PlainKey(<redacted>)");
        assert!(format!("{parsed:?}").contains("acme_live"));
    }

    fn found(h: &KeyHasher, text: &str) -> Vec<String> {
        h.find_in(text).iter().map(|k| k.raw.to_owned()).collect()
    }

    #[test]
    fn find_in_reports_each_key_wherever_it_sits() {
        let h = hasher();
        let a = h.generate(&prefix("acme_live"));
        let b = h.generate(&prefix("x9_test_eu"));
        let (a, b) = (a.key.expose_secret(), b.key.expose_secret());
        for (text, expected) in [
            (a.to_owned(), vec![a]),
            (format!(r#"{{"msg":"key={a}","other":"{b}"}}"#), vec![a, b]),
            (format!("Bearer {a}\n{b}"), vec![a, b]),
            // Glued to what precedes or follows it, a key is still a key.
            (format!("0Xq{a}."), vec![a]),
            (format!("{a}_tail"), vec![a]),
            (format!("{a}x9"), vec![a]),
            (format!("{a}{b}"), vec![a, b]),
            (a[..a.len() - 1].to_owned(), vec![]),
            (format!("\u{e9}{a}\u{e9}"), vec![a]),
        ] {
            assert_eq!(found(&h, &text), expected, "{text}");
        }
    }

    #[test]
    fn find_in_ignores_well_shaped_strings_without_a_valid_tag() {
        let h = hasher();
        let key = h.generate(&prefix("acme_live"));
        let key = key.key.expose_secret();
        let last = if key.ends_with('A') { 'B' } else { 'A' };
        let forged = format!("{}{last}", &key[..key.len() - 1]);
        let other = KeyHasher::new(&secrets([7; 32]), &[]).generate(&prefix("acme_live"));
        assert!(found(&h, &format!("{forged} {}", other.key.expose_secret())).is_empty());
    }

    /// JWK thumbprints (base64url SHA-256) are logged with every signing key; about one in 800
    /// has a key's shape. None may be reported, or the suite's log scan fails by chance.
    #[test]
    fn find_in_reports_no_random_thumbprint() {
        use base64::Engine as _;
        use sha2::Digest as _;
        let h = hasher();
        let mut shaped = 0;
        for i in 0u32..100_000 {
            let kid = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(Sha256::digest(i.to_le_bytes()));
            let line = format!(r#"{{"message":"generated a signing key","kid":"{kid}"}}"#);
            shaped += usize::from(has_key_shape(&kid));
            assert!(h.find_in(&line).is_empty(), "{line}");
        }
        // The test means something only if many of them have the shape the old scan flagged.
        assert!(shaped > 50, "only {shaped} thumbprints had a key's shape");
    }

    /// The old log scan's pattern: `[a-z][a-z0-9_]{1,23}_[0-9A-Za-z]{38}` then a non-base62.
    fn has_key_shape(s: &str) -> bool {
        let b = s.as_bytes();
        let prefix_char = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_';
        (0..b.len()).any(|sep| {
            let end = sep + 1 + BODY_LEN;
            b[sep] == b'_'
                && b.get(sep + 1..end)
                    .is_some_and(|body| body.iter().all(u8::is_ascii_alphanumeric))
                && !b.get(end).is_some_and(u8::is_ascii_alphanumeric)
                && (2..=24).any(|len| {
                    sep >= len
                        && b[sep - len].is_ascii_lowercase()
                        && b[sep - len + 1..sep].iter().all(prefix_char)
                })
        })
    }

    /// A response struct holding new keys shows them when serialised and never in `Debug`.
    #[test]
    fn a_plain_key_is_serialised_only_through_its_field() {
        #[derive(Debug, serde::Serialize)]
        struct Created {
            #[serde(serialize_with = "PlainKey::serialize_exposed")]
            key: PlainKey,
            #[serde(serialize_with = "PlainKey::serialize_exposed_opt")]
            replay: Option<PlainKey>,
        }
        let h = hasher();
        let key = h.generate(&prefix("acme_live")).key;
        let raw = key.expose_secret().to_owned();
        let created = Created { key, replay: None };
        let json = serde_json::to_value(&created).unwrap();
        assert_eq!(json, serde_json::json!({"key": raw, "replay": null}));
        let debug = format!("{created:?}");
        assert!(!debug.contains(&raw["acme_live_".len()..]), "{debug}");
    }

    fn prefix_strategy() -> impl Strategy<Value = KeyPrefix> {
        "[a-z][a-z0-9_]{0,22}[a-z0-9]"
            .prop_filter_map("valid prefix", |s| KeyPrefix::parse(&s).ok())
    }

    proptest! {
        #[test]
        fn generate_then_parse_round_trips(p in prefix_strategy(), master in any::<[u8; 32]>()) {
            let h = KeyHasher::new(&secrets(master), &[]);
            let g = h.generate(&p);
            let parsed = h.parse(g.key.expose_secret()).unwrap();
            prop_assert_eq!(parsed.prefix(), p.as_str());
            prop_assert_eq!(parsed.start(), g.start.clone());
            prop_assert_eq!(h.digest(&parsed), g.digest);
            prop_assert_eq!(h.digest(&parsed), h.digest(&parsed));
            prop_assert_eq!(h.digests(&parsed), vec![g.digest]);
            // A hasher rebuilt from the same master key agrees.
            let again = KeyHasher::new(&secrets(master), &[]);
            prop_assert_eq!(again.digest(&again.parse(g.key.expose_secret()).unwrap()), g.digest);
        }

        #[test]
        fn single_character_substitution_is_rejected(
            p in prefix_strategy(),
            position in any::<prop::sample::Index>(),
            replacement in 0usize..63,
        ) {
            let h = hasher();
            let g = h.generate(&p);
            let mut bytes = g.key.expose_secret().as_bytes().to_vec();
            let i = position.index(bytes.len());
            let alphabet: Vec<u8> = BASE62.iter().copied().chain([b'_']).collect();
            let mut c = alphabet[replacement];
            if c == bytes[i] {
                c = alphabet[(replacement + 1) % alphabet.len()];
            }
            bytes[i] = c;
            let mutated = String::from_utf8(bytes).unwrap();
            let err = h.parse(&mutated).unwrap_err();
            if let Some((pre, body)) = mutated.rsplit_once('_')
                && KeyPrefix::parse(pre).is_ok()
                && body.len() == SECRET_LEN + CHECK_LEN
            {
                prop_assert_eq!(err, KeyFormatError::BadCheck);
            }
        }

        #[test]
        fn parser_never_panics_on_arbitrary_strings(s in any::<String>()) {
            exercise(&hasher(), &s);
        }

        #[test]
        fn parser_never_panics_on_arbitrary_bytes(b in prop::collection::vec(any::<u8>(), 0..300)) {
            exercise(&hasher(), &String::from_utf8_lossy(&b));
        }

        #[test]
        fn parser_never_panics_on_near_keys(
            s in "[a-zA-Z0-9_]{0,30}_[0-9A-Za-z_\u{80}-\u{10FFFF}]{30,45}",
        ) {
            exercise(&hasher(), &s);
        }

        #[test]
        fn keys_from_a_previous_master_key_still_verify(
            p in prefix_strategy(),
            old_master in any::<[u8; 32]>(),
            new_master in any::<[u8; 32]>(),
        ) {
            prop_assume!(old_master != new_master);
            let old = secrets(old_master);
            let g = KeyHasher::new(&old, &[]).generate(&p);
            let rotated = KeyHasher::new(&secrets(new_master), &[old]);
            let parsed = rotated.parse(g.key.expose_secret()).unwrap();
            let digests = rotated.digests(&parsed);
            prop_assert_eq!(&rotated.digests_of(g.key.expose_secret()), &digests);
            prop_assert_eq!(digests.len(), 2);
            prop_assert_ne!(digests[0], g.digest);
            prop_assert_eq!(digests[1], g.digest);
            prop_assert_ne!(rotated.digest(&parsed), g.digest);
            // Keys minted after rotation use the new secrets and verify too.
            let fresh = rotated.generate(&p);
            let fresh_parsed = rotated.parse(fresh.key.expose_secret()).unwrap();
            prop_assert_eq!(rotated.digest(&fresh_parsed), fresh.digest);
        }

        #[test]
        fn keys_from_another_master_key_fail_the_check(
            p in prefix_strategy(),
            a in any::<[u8; 32]>(),
            b in any::<[u8; 32]>(),
        ) {
            prop_assume!(a != b);
            let g = KeyHasher::new(&secrets(a), &[]).generate(&p);
            let other = KeyHasher::new(&secrets(b), &[]);
            prop_assert_eq!(other.parse(g.key.expose_secret()).unwrap_err(), KeyFormatError::BadCheck);
        }
    }

    fn exercise(h: &KeyHasher, s: &str) {
        if let Ok(parsed) = h.parse(s) {
            let _ = (parsed.prefix(), parsed.start(), h.digests(&parsed));
        }
    }
}
