//! Commands on webhook endpoints.

use crate::domain::webhook::{EndpointUrl, EventTypes};

/// Longest endpoint description.
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// Longest overlap during which a rotated-out secret still signs: 7 days.
pub const MAX_SECRET_OVERLAP_SECONDS: i64 = 7 * 24 * 3600;
/// The overlap when none is asked for: 24 hours.
pub const DEFAULT_SECRET_OVERLAP_SECONDS: i64 = 24 * 3600;

/// An endpoint to create; its signing secret is made by the service.
#[derive(Debug)]
pub struct NewWebhookEndpoint {
    pub url: EndpointUrl,
    pub events: EventTypes,
    pub description: String,
    pub enabled: bool,
}

/// A change to an endpoint; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct WebhookEndpointEdit {
    pub url: Option<EndpointUrl>,
    pub events: Option<EventTypes>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

impl WebhookEndpointEdit {
    pub fn is_empty(&self) -> bool {
        self.url.is_none()
            && self.events.is_none()
            && self.description.is_none()
            && self.enabled.is_none()
    }
}

/// A description: at most 500 characters, without control characters other than newlines.
pub fn parse_description(raw: &str) -> Result<String, &'static str> {
    let text = raw.trim();
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err("must be at most 500 characters");
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err("must not contain control characters");
    }
    Ok(text.to_owned())
}
