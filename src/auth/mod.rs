//! Authentication and authorization: root keys for the API, passwords and sessions for the dashboard.

pub mod leak_signature;
pub mod password;
pub mod root_key;
pub mod session;
pub mod sign_in_throttle;
pub mod throttle;
