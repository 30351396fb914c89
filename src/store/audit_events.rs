//! The append-only audit log.

use diesel::prelude::*;

use super::models::AuditEventRow;
use super::schema::audit_events;
use super::{DbConnection, StoreError};

pub fn insert(conn: &mut DbConnection, row: &AuditEventRow) -> Result<(), StoreError> {
    diesel::insert_into(audit_events::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}
