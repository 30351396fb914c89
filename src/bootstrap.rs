//! `latchkey bootstrap`: the first tenant, its owner and an all-powerful root key, in one transaction.

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::json;

use crate::audit::AuditContext;
use crate::auth::password::{self, Password, PasswordError};
use crate::auth::root_key::{self, RootKeySpec};
use crate::domain::account::{Email, TenantName};
use crate::domain::key::{KeyHasher, PlainKey};
use crate::domain::scope::{ROOT_SCOPES, Scopes};
use crate::events::{Change, Event, Subject};
use crate::manage::ManageError;
use crate::manage::tenants::{Founder, create_with_owner};
use crate::store::{Store, StoreError, now, tenants};

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("tenant name must be 1 to 100 characters")]
    InvalidTenantName,
    #[error("`{0}` is not an e-mail address")]
    InvalidEmail(String),
    #[error("LATCHKEY_BOOTSTRAP_PASSWORD {0}")]
    InvalidPassword(PasswordError),
    #[error("a tenant named `{0}` already exists; nothing was changed")]
    TenantExists(String),
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Manage(ManageError),
}

impl From<diesel::result::Error> for BootstrapError {
    fn from(err: diesel::result::Error) -> Self {
        Self::Store(err.into())
    }
}

/// What bootstrap created. `password` is set only when it was generated (it is shown once).
/// The secrets stay in secret types until the command prints them; `Debug` shows neither.
#[derive(Debug, Serialize)]
pub struct Bootstrapped {
    pub tenant_id: String,
    pub tenant: String,
    pub user_id: String,
    pub email: String,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "expose_password"
    )]
    pub password: Option<SecretString>,
    pub root_key_id: String,
    #[serde(serialize_with = "PlainKey::serialize_exposed")]
    pub root_key: PlainKey,
    pub scopes: Vec<String>,
}

fn expose_password<S: serde::Serializer>(
    password: &Option<SecretString>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match password {
        Some(password) => s.serialize_str(password.expose_secret()),
        None => s.serialize_none(),
    }
}

/// Creates tenant, owner (or adds an existing user as owner), root key and audit events.
pub fn bootstrap(
    store: &Store,
    hasher: &KeyHasher,
    tenant_name: &str,
    email: &str,
    password: Option<String>,
) -> Result<Bootstrapped, BootstrapError> {
    let tenant_name = TenantName::parse(tenant_name).ok_or(BootstrapError::InvalidTenantName)?;
    let email =
        Email::parse(email).ok_or_else(|| BootstrapError::InvalidEmail(email.to_owned()))?;
    let (password, generated) = match password {
        Some(raw) => (
            Password::parse_new(raw.into()).map_err(BootstrapError::InvalidPassword)?,
            None,
        ),
        None => {
            let raw = generate_password();
            (Password::candidate(raw.clone().into()), Some(raw))
        }
    };
    let password_hash =
        password::hash(&password).map_err(|e| BootstrapError::Hash(e.to_string()))?;

    let mut conn = store.conn()?;
    crate::store::write_transaction(&mut conn, |conn| {
        let at = now();
        let audit = AuditContext::cli();
        let founder = Founder::Named {
            email: &email,
            password_hash,
        };
        // Names may repeat (sign-up does not refuse them), but the operator names the tenant
        // here: running bootstrap again must not open a second one of the same name.
        if !tenants::named(conn, tenant_name.as_str())?.is_empty() {
            return Err(BootstrapError::TenantExists(
                tenant_name.as_str().to_owned(),
            ));
        }
        // Its events are recorded but go nowhere: no server runs yet, so nothing subscribes.
        let opened =
            create_with_owner(conn, &audit, &tenant_name, founder, at).map_err(
                |err| match err {
                    ManageError::Store(err) => BootstrapError::Store(err),
                    other => BootstrapError::Manage(other),
                },
            )?;
        let tenant_id = opened.tenant;
        let scopes =
            Scopes::parse(ROOT_SCOPES.iter().copied()).expect("the root scope list is valid");
        let issued = root_key::issue(
            conn,
            hasher,
            &tenant_id,
            RootKeySpec {
                name: "bootstrap",
                scopes: &scopes,
                expires_at: None,
                created_by: "cli",
                created_at: at,
            },
        )?;

        let fields = json!({ "name": "bootstrap", "scopes": scopes.to_strings() });
        let subject = Subject::root_key(&issued.row);
        Event::record(conn, &audit, &tenant_id, subject, Change::Created, fields)?;

        Ok(Bootstrapped {
            tenant_id: tenant_id.as_str().to_owned(),
            tenant: tenant_name.as_str().to_owned(),
            user_id: opened.owner.into_string(),
            email: email.as_str().to_owned(),
            // An existing user keeps the password they have; a generated one is not theirs.
            password: generated
                .filter(|_| opened.new_account)
                .map(SecretString::from),
            root_key_id: issued.row.id,
            root_key: issued.key,
            scopes: scopes.to_strings(),
        })
    })
}

fn generate_password() -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(24)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::domain::account::parse_email;

    #[test]
    fn emails() {
        assert_eq!(
            parse_email(" Ada@Example.COM ").as_deref(),
            Some("ada@example.com")
        );
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@example",
            "a b@example.com",
            "ada@.com",
        ] {
            assert_eq!(parse_email(bad), None, "{bad}");
        }
    }
}
