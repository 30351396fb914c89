//! Tenants: creating one together with its first owner (sign-up and `latchkey bootstrap`).

use chrono::NaiveDateTime;
use serde_json::json;

use crate::audit::AuditContext;
use crate::domain::ids::{TenantId, UserId};
use crate::events::{Change, Event, Subject};
use crate::store::models::{Membership, Tenant};
use crate::store::{DbConnection, StoreError, memberships, tenants};

/// Creates the tenant `name`, makes the existing user `user_id` its owner and records both in the
/// audit log. Call it inside the caller's transaction, after checking the name is free.
pub fn create_with_owner(
    conn: &mut DbConnection,
    audit: &AuditContext,
    name: &str,
    user_id: &str,
    email: &str,
    at: NaiveDateTime,
) -> Result<(TenantId, Event), StoreError> {
    let tenant_id = TenantId::new();
    tenants::insert(
        conn,
        &Tenant {
            id: tenant_id.as_str().to_owned(),
            name: name.to_owned(),
            created_at: at,
        },
    )?;
    memberships::insert(
        conn,
        &Membership {
            tenant_id: tenant_id.as_str().to_owned(),
            user_id: user_id.to_owned(),
            role: "owner".into(),
            created_at: at,
        },
    )?;
    audit.record(
        conn,
        &tenant_id,
        "tenant.create",
        ("tenant", tenant_id.as_str()),
        json!({ "name": name }),
    )?;
    let owner = Subject::Member {
        user_id: UserId::from_trusted(user_id.to_owned()),
    };
    let fields = json!({ "email": email, "role": "owner" });
    let joined = Event::record(conn, audit, &tenant_id, owner, Change::Created, fields)?;
    Ok((tenant_id, joined))
}
