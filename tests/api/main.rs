//! One integration binary: each module tests one feature against the real application, spawned
//! on port 0 with its own fresh database (SQLite file or PostgreSQL database, per
//! `LATCHKEY_TEST_BACKEND`).

// First, so that its macros (`skip!`, `skip_unless!`) are in scope in every other module.
#[macro_use]
mod helpers;

mod abuse_limits;
mod audit;
mod authorization;
mod bad_input;
mod cli;
mod cluster;
mod concurrency;
mod dashboard;
mod delete;
mod echoes;
mod failures;
mod health;
mod http_semantics;
mod import;
mod isolation;
mod keys;
mod keyspaces;
mod l2;
mod migrations;
mod nodes;
mod oauth;
mod openapi;
mod operational_metrics;
mod proxies;
mod ratelimits;
mod retention;
mod revoke;
mod roles;
mod root_keys;
mod rotate;
mod shutdown;
mod small_holes;
mod usage_metrics;
mod verify;
mod webhooks;
