//! Time as the domain reads it: UTC timestamps, stored without a zone.

/// A stored (naive, UTC) timestamp as UTC, for answers (RFC 3339 with a `Z`).
pub fn utc(at: chrono::NaiveDateTime) -> chrono::DateTime<chrono::Utc> {
    at.and_utc()
}
