//! One integration binary: each module tests one feature against the real application, spawned
//! on port 0 with its own fresh database (SQLite file or PostgreSQL database, per
//! `LATCHKEY_TEST_BACKEND`).

mod cli;
mod dashboard;
mod health;
mod helpers;
mod migrations;
