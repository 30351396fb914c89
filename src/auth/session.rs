//! Dashboard sessions and CSRF tokens.
//!
//! The cookie holds 32 random bytes; the store holds only their HMAC (keyed with the derived
//! session secret), so a copy of the database cannot be replayed as cookies. Each session
//! carries a synchronizer CSRF token; visitors who are not signed in get a signed
//! double-submit token instead (cookie value + HMAC of it in the form).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{NaiveDateTime, TimeDelta};
use hmac::{Hmac, Mac};
use rand::TryRngCore as _;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::domain::ids::TenantId;
use crate::domain::role::Role;
use crate::domain::secrets::{DerivedSecrets, SecretKey32};
use crate::store::models::SessionRow;
use crate::store::{DbConnection, StoreError, memberships, sessions, users};

/// A session ends after this long without a request.
pub const IDLE_TIMEOUT: TimeDelta = TimeDelta::hours(2);
/// A session ends this long after sign-in, however active.
pub const ABSOLUTE_TIMEOUT: TimeDelta = TimeDelta::hours(12);
/// `last_seen_at` is written at most this often, so reading pages does not write every time.
const TOUCH_EVERY: TimeDelta = TimeDelta::seconds(60);
/// Length of an encoded 32-byte token.
const TOKEN_CHARS: usize = 43;

type HmacSha256 = Hmac<Sha256>;

/// 32 random bytes, URL-safe base64. Used for session ids, CSRF tokens and invite links.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the OS CSPRNG must be available to make a session token");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Compares two tokens in constant time (only the length may leak, and it is public).
pub fn tokens_match(expected: &str, given: &str) -> bool {
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

/// The value of a session cookie or invite link; `Debug` never prints it.
pub struct SessionToken(SecretString);

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

impl SessionToken {
    pub fn generate() -> Self {
        Self(random_token().into())
    }

    /// Accepts only something that could be one of our tokens.
    pub fn parse(raw: &str) -> Option<Self> {
        let well_formed = raw.len() == TOKEN_CHARS
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        well_formed.then(|| Self(raw.to_owned().into()))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// The keys that turn session ids and invite tokens into stored digests and sign anonymous
/// CSRF tokens.
#[derive(Clone, Debug)]
pub struct SessionKeys {
    session: SecretKey32,
    csrf: SecretKey32,
}

impl SessionKeys {
    pub fn new(secrets: &DerivedSecrets) -> Self {
        Self {
            session: secrets.session.clone(),
            csrf: secrets.csrf.clone(),
        }
    }

    /// What the store keeps for a session id or invite token (`purpose` separates the two).
    pub fn digest(&self, purpose: &str, token: &SessionToken) -> Vec<u8> {
        self.keyed(purpose, token.expose())
    }

    /// An HMAC of `value` for `purpose`: a name for it that only this deployment can compute
    /// (sign-in counters in Redis are named by the account this way).
    pub fn keyed(&self, purpose: &str, value: &str) -> Vec<u8> {
        let mut mac = mac(&self.session);
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(value.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// The form token that goes with an anonymous visitor's CSRF cookie value.
    pub fn anonymous_csrf(&self, cookie_value: &str) -> String {
        let mut mac = mac(&self.csrf);
        mac.update(cookie_value.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

fn mac(key: &SecretKey32) -> HmacSha256 {
    HmacSha256::new_from_slice(key.expose()).expect("HMAC accepts keys of any length")
}

/// Purpose label for session cookies in [`SessionKeys::digest`].
pub const SESSION_PURPOSE: &str = "session";
/// Purpose label for invite links in [`SessionKeys::digest`].
pub const INVITE_PURPOSE: &str = "invite";

/// One tenant the signed-in user belongs to.
#[derive(Clone, Debug)]
pub struct TenantChoice {
    pub id: TenantId,
    pub name: String,
    pub role: Role,
}

/// A live session with its user and tenants, as every dashboard request sees it.
#[derive(Clone, Debug)]
pub struct SignedIn {
    pub digest: Vec<u8>,
    pub user_id: String,
    pub email: String,
    pub csrf_token: String,
    /// Every tenant of the user, by name.
    pub tenants: Vec<TenantChoice>,
    /// The tenant being worked in (an index into `tenants`), if the user has any.
    pub current: Option<usize>,
}

impl SignedIn {
    pub fn tenant(&self) -> Option<&TenantChoice> {
        self.current.and_then(|i| self.tenants.get(i))
    }
}

/// Starts a session for a user (a new id every time: sign-in rotates the session).
pub fn start(
    conn: &mut DbConnection,
    keys: &SessionKeys,
    user_id: &str,
    tenant: Option<&TenantId>,
    now: NaiveDateTime,
) -> Result<SessionToken, StoreError> {
    let token = SessionToken::generate();
    sessions::insert(
        conn,
        &SessionRow {
            id_digest: keys.digest(SESSION_PURPOSE, &token),
            user_id: user_id.to_owned(),
            tenant_id: tenant.map(|t| t.as_str().to_owned()),
            csrf_token: random_token(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + ABSOLUTE_TIMEOUT,
        },
    )?;
    Ok(token)
}

/// Finds the live session for a cookie digest; ends it if it has expired.
pub fn resolve(
    conn: &mut DbConnection,
    digest: &[u8],
    now: NaiveDateTime,
) -> Result<Option<SignedIn>, StoreError> {
    let Some(row) = sessions::find(conn, digest)? else {
        return Ok(None);
    };
    if row.expires_at <= now || row.last_seen_at + IDLE_TIMEOUT <= now {
        sessions::delete(conn, digest)?;
        return Ok(None);
    }
    let Some(user) = users::find(conn, &row.user_id)? else {
        return Ok(None);
    };
    if now - row.last_seen_at >= TOUCH_EVERY {
        sessions::touch(conn, digest, now)?;
    }
    let tenants: Vec<TenantChoice> = memberships::list_for_user(conn, &user.id)?
        .into_iter()
        .filter_map(|(membership, tenant)| {
            Some(TenantChoice {
                id: TenantId::from_trusted(tenant.id),
                name: tenant.name,
                role: Role::parse(&membership.role)?,
            })
        })
        .collect();
    let current = row
        .tenant_id
        .as_deref()
        .and_then(|id| tenants.iter().position(|t| t.id.as_str() == id))
        .or_else(|| (!tenants.is_empty()).then_some(0));
    if let Some(i) = current
        && row.tenant_id.as_deref() != Some(tenants[i].id.as_str())
    {
        sessions::set_tenant(conn, digest, &tenants[i].id)?;
    }
    Ok(Some(SignedIn {
        digest: row.id_digest,
        user_id: user.id,
        email: user.email,
        csrf_token: row.csrf_token,
        tenants,
        current,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_well_formed() {
        let a = SessionToken::generate();
        let b = SessionToken::generate();
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), TOKEN_CHARS);
        assert!(SessionToken::parse(a.expose()).is_some());
        assert!(SessionToken::parse("short").is_none());
        assert!(SessionToken::parse(&"!".repeat(TOKEN_CHARS)).is_none());
        assert_eq!(format!("{a:?}"), "SessionToken(<redacted>)");
        assert!(tokens_match("abc", "abc"));
        assert!(!tokens_match("abc", "abd"));
        assert!(!tokens_match("abc", ""));
    }
}
