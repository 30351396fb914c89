//! latchkey: multi-tenant API key management. The binary in `main.rs` is a thin shell over this library.

#[cfg(test)]
mod architecture;
pub mod audit;
pub mod auth;
pub mod bootstrap;
pub mod breaker;
pub mod cache;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod manage;
pub mod metrics;
pub mod redis;
pub mod routes;
pub mod scan;
pub mod startup;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod tokens;
pub mod verify;
