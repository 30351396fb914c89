//! Pure domain types with no I/O: the master key and derived secrets, the API key format and digest, scopes.

pub mod account;
pub mod commands;
pub mod error_code;
pub mod ids;
pub mod inputs;
pub mod key;
pub mod key_role;
pub mod key_status;
pub mod legacy;
pub mod role;
pub mod scope;
pub mod scope_query;
pub mod secrets;
pub mod time;
pub mod token;
pub mod verify_code;
pub mod webhook;

pub use key::{
    CHECK_LEN, GeneratedKey, KeyDigest, KeyFormatError, KeyHasher, KeyPrefix, MAX_KEY_LEN,
    ParsedKey, PlainKey, PrefixError, SECRET_LEN,
};
pub use scope::{ROOT_SCOPES, Scope, ScopeError, Scopes};
pub use secrets::{DerivedSecrets, MasterKey, MasterKeyError, SecretKey32};
