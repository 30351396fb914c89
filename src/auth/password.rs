//! Dashboard passwords: argon2id at OWASP's parameters (m = 19 MiB, t = 2, p = 1).

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Length rules only (NIST SP 800-63B): composition rules make passwords worse, not better.
pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_CHARS: usize = 256;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("must be at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("must be at most {MAX_PASSWORD_CHARS} characters")]
    TooLong,
}

/// A password as typed; `Debug` never prints it.
pub struct Password(SecretString);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Password {
    /// Accepts a new password if its length is sensible.
    pub fn parse_new(raw: SecretString) -> Result<Self, PasswordError> {
        let chars = raw.expose_secret().chars().count();
        if chars < MIN_PASSWORD_CHARS {
            return Err(PasswordError::TooShort);
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(PasswordError::TooLong);
        }
        Ok(Self(raw))
    }

    /// Wraps a password typed at sign-in (no rules: it is only compared).
    pub fn candidate(raw: SecretString) -> Self {
        Self(raw)
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("OWASP argon2id parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password into a PHC string. CPU-heavy (~tens of ms): call off the async runtime.
pub fn hash(password: &Password) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(hasher()
        .hash_password(password.expose().as_bytes(), &salt)?
        .to_string())
}

/// Checks a password against a stored PHC string. CPU-heavy: call off the async runtime.
pub fn verify(password: &Password, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => hasher()
            .verify_password(password.expose().as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Runs argon2id off the async runtime, at most a few at a time, so a burst of sign-ins can
/// neither block request handling nor exhaust memory (each call takes ~19 MiB).
#[derive(Clone)]
pub struct PasswordWorkers {
    permits: Arc<Semaphore>,
    /// Verified against when an e-mail is unknown, so unknown and known accounts cost the same.
    dummy_hash: Arc<str>,
}

impl PasswordWorkers {
    /// Computes the dummy hash now (one argon2id call), so call it once at start.
    pub fn new(permits: usize) -> Self {
        let dummy = Password::candidate(generate_dummy().into());
        let dummy_hash = hash(&dummy).expect("argon2id hashes a 32-character password");
        Self {
            permits: Arc::new(Semaphore::new(permits)),
            dummy_hash: dummy_hash.into(),
        }
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: Password) -> anyhow::Result<String> {
        let _permit = self.permits.acquire().await?;
        let phc = tokio::task::spawn_blocking(move || hash(&password))
            .await?
            .map_err(|e| anyhow::anyhow!("argon2id failed: {e}"))?;
        Ok(phc)
    }

    /// Checks a password against the stored hash, or against the dummy hash when there is
    /// no account (always false then), so both cases take the same time.
    pub async fn verify(&self, password: Password, stored: Option<String>) -> anyhow::Result<bool> {
        let _permit = self.permits.acquire().await?;
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let matched = tokio::task::spawn_blocking(move || verify(&password, &phc)).await?;
        Ok(known && matched)
    }
}

fn generate_dummy() -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_rules_only() {
        assert_eq!(
            Password::parse_new("short".into()).unwrap_err(),
            PasswordError::TooShort
        );
        assert!(Password::parse_new("correct horse battery".into()).is_ok());
        assert!(Password::parse_new("aaaaaaaaaaaa".into()).is_ok());
        assert_eq!(
            Password::parse_new("x".repeat(257).into()).unwrap_err(),
            PasswordError::TooLong
        );
    }

    #[test]
    fn hash_then_verify() {
        let pw = Password::parse_new("correct horse battery".into()).unwrap();
        let phc = hash(&pw).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify(&pw, &phc));
        assert!(!verify(
            &Password::candidate("wrong horse battery".into()),
            &phc
        ));
        assert!(!verify(&pw, "not a hash"));
        assert_eq!(format!("{pw:?}"), "Password(<redacted>)");
    }
}
