//! Dashboard users (not tenant-owned: a user may belong to several tenants).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::models::User;
use super::schema::users;
use super::{DbConnection, StoreError};
use crate::domain::ids::new_id;

/// Makes a new account (sign-up, an accepted invitation, `latchkey bootstrap`) and returns its id.
pub fn create(
    conn: &mut DbConnection,
    email: &str,
    password_hash: String,
    at: NaiveDateTime,
) -> Result<String, StoreError> {
    let user = User {
        id: new_id(),
        email: email.to_owned(),
        password_hash,
        created_at: at,
        updated_at: at,
    };
    diesel::insert_into(users::table)
        .values(&user)
        .execute(conn)?;
    Ok(user.id)
}

/// Looks a user up by e-mail; callers normalise the address to lower case first.
pub fn find_by_email(conn: &mut DbConnection, email: &str) -> Result<Option<User>, StoreError> {
    Ok(users::table
        .filter(users::email.eq(email))
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

pub fn find(conn: &mut DbConnection, id: &str) -> Result<Option<User>, StoreError> {
    Ok(users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .optional()?)
}
