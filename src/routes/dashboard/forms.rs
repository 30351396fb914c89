//! What a form shows back after a failed submission: the values typed and an error per field.

use std::collections::BTreeMap;

use crate::domain::inputs::RateLimit;
use crate::manage::ManageError;

#[derive(Debug, Default, Clone)]
pub struct FormState {
    values: BTreeMap<String, String>,
    errors: BTreeMap<String, String>,
    /// A problem with the form as a whole (shown above it).
    pub summary: Option<String>,
}

impl FormState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps a value to show again (never call this for passwords or secrets).
    pub fn keep(&mut self, field: &str, value: &str) -> &mut Self {
        self.values.insert(field.to_owned(), value.to_owned());
        self
    }

    /// Puts `message` beside `field`, in words for people: the API's code quotes (`like
    /// this`) become typographic quotes.
    pub fn error(&mut self, field: &str, message: impl Into<String>) -> &mut Self {
        self.errors
            .insert(field.to_owned(), in_words(&message.into()));
        self
    }

    /// Puts a service's refusal beside the field it names; a field the form does not show,
    /// or a refusal of the whole request, becomes the summary.
    pub fn absorb(&mut self, err: &ManageError, shown: &[&str]) {
        let ManageError::Invalid { field, message } = err else {
            self.summary = Some(err.to_string());
            return;
        };
        let field = field.split(['.', '[']).next().unwrap_or(field);
        if shown.contains(&field) {
            self.error(field, message.clone());
        } else {
            self.summary = Some(in_words(&format!("{field}: {message}")));
        }
    }

    /// The value a parser made of a field, or its complaint beside the field.
    pub fn parsed<T, E: std::fmt::Display>(
        &mut self,
        field: &str,
        parsed: Result<T, E>,
    ) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(e) => {
                self.error(field, e.to_string());
                None
            }
        }
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty() || self.summary.is_some()
    }

    /// The value to put back in a field (empty when none).
    pub fn value(&self, field: &str) -> &str {
        self.values.get(field).map_or("", String::as_str)
    }

    /// Whether a checkbox or option was chosen.
    pub fn is(&self, field: &str, value: &str) -> bool {
        self.values.get(field).is_some_and(|v| v == value)
    }

    pub fn error_for(&self, field: &str) -> Option<&str> {
        self.errors.get(field).map(String::as_str)
    }

    pub fn has_error(&self, field: &str) -> bool {
        self.errors.contains_key(field)
    }
}

impl FormState {
    /// Reads an optional whole number; records an error (and returns `None`) when it is not one.
    pub fn number(&mut self, field: &str, raw: &str) -> Option<i64> {
        let raw = raw.trim();
        if raw.is_empty() {
            return None;
        }
        match raw.replace(['_', ','], "").parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.error(field, "Enter a whole number, or leave it empty.");
                None
            }
        }
    }

    /// Reads the `ratelimit_limit` and `ratelimit_window` fields: both or neither.
    pub fn rate_limit(&mut self, limit_raw: &str, window_raw: &str) -> Option<RateLimit> {
        let limit = self.number("ratelimit_limit", limit_raw);
        let window = self.number("ratelimit_window", window_raw);
        match (limit, window) {
            (None, None) => None,
            (Some(limit), Some(window)) => Some(RateLimit {
                limit: i32::try_from(limit).unwrap_or(i32::MAX),
                window_seconds: i32::try_from(window).unwrap_or(i32::MAX),
            }),
            (Some(_), None) => {
                self.error(
                    "ratelimit_window",
                    "Give the window too, or leave both empty.",
                );
                None
            }
            (None, Some(_)) => {
                self.error(
                    "ratelimit_limit",
                    "Give the limit too, or leave both empty.",
                );
                None
            }
        }
    }
}

/// Splits a list typed as text (commas, spaces or new lines between items).
pub fn split_list(raw: &str) -> Vec<String> {
    raw.split([',', ' ', '\n', '\r', '\t'])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The pairs of a form body, for forms that repeat a field (checkbox lists).
pub fn pairs(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

/// Every value of a repeated field.
pub fn all_of(pairs: &[(String, String)], field: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == field)
        .map(|(_, v)| v.clone())
        .collect()
}

/// The first value of a field, or empty.
pub fn first_of<'a>(pairs: &'a [(String, String)], field: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == field)
        .map_or("", |(_, v)| v.as_str())
}

/// A service message as a form shows it: `code` quotes become “typographic” ones.
fn in_words(message: &str) -> String {
    let mut open = true;
    message
        .chars()
        .map(|c| match c {
            '`' => {
                open = !open;
                if open { '”' } else { '“' }
            }
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_quotes_become_typographic_quotes() {
        assert_eq!(
            in_words("scope must have the form `resource:action`, or `*`"),
            "scope must have the form “resource:action”, or “*”"
        );
        let mut form = FormState::new();
        form.error("scopes", "must be `a:b`");
        assert_eq!(form.error_for("scopes"), Some("must be “a:b”"));
    }
}
