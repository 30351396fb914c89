//! Authentication: root keys for the API, passwords and sessions for the dashboard.

pub mod password;
pub mod root_key;
pub mod session;
pub mod throttle;
