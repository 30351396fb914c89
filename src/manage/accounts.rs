//! Dashboard accounts: signing up (a user, their tenant and its owner membership), signing in
//! (throttled, the same work for unknown addresses), signing out, switching tenants.

use crate::auth::password::PasswordWorkers;
use crate::auth::session::SessionKeys;
use crate::auth::sign_in_throttle::SignInThrottle;

/// What accounts are made and signed in with: the keys that digest session ids and invite
/// links, the password workers, and the sign-in throttle.
#[derive(Clone, Copy)]
pub struct Credentials<'a> {
    pub keys: &'a SessionKeys,
    pub passwords: &'a PasswordWorkers,
    pub throttle: &'a SignInThrottle,
}
