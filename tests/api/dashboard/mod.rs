//! The dashboard: server-side tests with a cookie-keeping HTTP client, and browser journeys
//! in headless Chromium (`browser.rs`).

mod account;
mod browser;
mod keys;
pub(crate) mod members;
mod roles;
mod security;
pub mod support;
