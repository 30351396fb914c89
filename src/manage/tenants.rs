//! Tenants: opening one together with its first owner (sign-up and `latchkey bootstrap`).

use chrono::NaiveDateTime;
use serde_json::json;

use crate::audit::{Actor, AuditContext};
use crate::domain::account::{Email, TenantName};
use crate::domain::error_code::ErrorCode;
use crate::domain::ids::{TenantId, UserId};
use crate::domain::role::Role;
use crate::events::{Change, Event, Subject};
use crate::manage::ManageError;
use crate::store::models::{Membership, Tenant};
use crate::store::{DbConnection, memberships, tenants, users};

/// The first owner of a new tenant.
pub enum Founder<'a> {
    /// Someone signing up: a new account (refused if the address has one), who is also the
    /// actor of what is recorded.
    SigningUp {
        email: &'a Email,
        password_hash: String,
    },
    /// The operator's choice (`latchkey bootstrap`): the account with this address, made with
    /// this password hash if there is none.
    Named {
        email: &'a Email,
        password_hash: String,
    },
}

/// A new tenant, its owner, and the event of the owner joining (to dispatch after commit).
#[derive(Debug)]
pub struct Opened {
    pub tenant: TenantId,
    pub owner: UserId,
    /// Whether the owner's account was made for it.
    pub new_account: bool,
    pub joined: Event,
}

/// Creates the tenant `name` with `founder` as its owner, and records both in the audit log.
/// Call it inside the caller's transaction. Names may repeat: the new tenant is known by its id.
pub fn create_with_owner(
    conn: &mut DbConnection,
    audit: &AuditContext,
    name: &TenantName,
    founder: Founder<'_>,
    at: NaiveDateTime,
) -> Result<Opened, ManageError> {
    let (email, password_hash, signing_up) = match founder {
        Founder::SigningUp {
            email,
            password_hash,
        } => (email, password_hash, true),
        Founder::Named {
            email,
            password_hash,
        } => (email, password_hash, false),
    };
    let (user_id, new_account) = match users::find_by_email(conn, email.as_str())? {
        Some(_) if signing_up => {
            return Err(ManageError::refused(
                ErrorCode::EmailTaken,
                "An account with this e-mail address already exists. Sign in instead.",
            ));
        }
        Some(existing) => (existing.id, false),
        None => (
            users::create(conn, email.as_str(), password_hash, at)?,
            true,
        ),
    };
    let user_id = UserId::from_trusted(user_id);
    let mut audit = audit.clone();
    if signing_up {
        audit.actor = Actor::User(user_id.clone());
    }
    let tenant = TenantId::new();
    tenants::insert(
        conn,
        &Tenant {
            id: tenant.as_str().to_owned(),
            name: name.as_str().to_owned(),
            created_at: at,
        },
    )?;
    memberships::insert(
        conn,
        &Membership {
            tenant_id: tenant.as_str().to_owned(),
            user_id: user_id.as_str().to_owned(),
            role: Role::Owner.as_str().to_owned(),
            created_at: at,
        },
    )?;
    audit.record(
        conn,
        &tenant,
        "tenant.create",
        ("tenant", tenant.as_str()),
        json!({ "name": name.as_str() }),
    )?;
    let owner = Subject::Member {
        user_id: user_id.clone(),
    };
    let fields = json!({ "email": email.as_str(), "role": Role::Owner.as_str() });
    let joined = Event::record(conn, &audit, &tenant, owner, Change::Created, fields)?;
    Ok(Opened {
        tenant,
        owner: user_id,
        new_account,
        joined,
    })
}
