//! The settings a key's create and edit forms share (name, owner, scopes, allowlist, limit,
//! credits, metadata): one parser, so both forms say the same words about the same mistakes.

use serde::Deserialize;

use crate::domain::inputs::{
    Credits, IpAllowlist, Meta, RateLimit, Refill, RefillInterval, parse_name, parse_owner_id,
};
use crate::domain::scope::Scopes;
use crate::routes::dashboard::forms::{FormState, split_list};

/// The shared fields, as typed.
#[derive(Deserialize, Default)]
pub struct SettingsForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub owner_id: String,
    #[serde(default)]
    pub scopes: String,
    #[serde(default)]
    pub ip_allowlist: String,
    #[serde(default)]
    pub ratelimit_limit: String,
    #[serde(default)]
    pub ratelimit_window: String,
    #[serde(default)]
    pub credits_remaining: String,
    #[serde(default)]
    pub refill_amount: String,
    #[serde(default)]
    pub refill_interval: String,
    #[serde(default)]
    pub meta: String,
}

/// The shared fields, read. An empty field is `None` (or empty): the create form then takes
/// the keyspace's default, the edit form clears the setting.
pub struct Settings {
    pub name: Option<String>,
    pub owner_id: Option<String>,
    pub scopes: Option<Scopes>,
    pub ip_allowlist: IpAllowlist,
    pub ratelimit: Option<RateLimit>,
    pub credits: Option<Credits>,
    pub meta: Meta,
}

impl SettingsForm {
    /// Every field with its value, in the form's order.
    pub fn fields(&self) -> [(&'static str, &str); 10] {
        [
            ("name", &self.name),
            ("owner_id", &self.owner_id),
            ("scopes", &self.scopes),
            ("ip_allowlist", &self.ip_allowlist),
            ("ratelimit_limit", &self.ratelimit_limit),
            ("ratelimit_window", &self.ratelimit_window),
            ("credits_remaining", &self.credits_remaining),
            ("refill_amount", &self.refill_amount),
            ("refill_interval", &self.refill_interval),
            ("meta", &self.meta),
        ]
    }

    /// Reads every field, keeping what was typed; each problem goes beside its field, all at
    /// once. `None` when there was any.
    pub fn read(&self, shown: &mut FormState) -> Option<Settings> {
        for (field, value) in self.fields() {
            shown.keep(field, value);
        }
        let name = optional(&self.name).and_then(|n| shown.parsed("name", parse_name(n)));
        let owner_id =
            optional(&self.owner_id).and_then(|o| shown.parsed("owner_id", parse_owner_id(o)));
        let scopes = split_list(&self.scopes);
        let scopes = if scopes.is_empty() {
            None
        } else {
            shown.parsed("scopes", Scopes::parse(&scopes))
        };
        let ip_allowlist = read_allowlist(&self.ip_allowlist, shown);
        let ratelimit = shown
            .rate_limit(&self.ratelimit_limit, &self.ratelimit_window)
            .and_then(|limit| shown.parsed("ratelimit_limit", limit.validate()));
        let credits = self.credits(shown);
        let meta = if self.meta.trim().is_empty() {
            Some(Meta::empty())
        } else {
            match serde_json::from_str::<serde_json::Value>(&self.meta) {
                Ok(value) => shown.parsed("meta", Meta::parse(value)),
                Err(_) => {
                    shown.error("meta", "Enter a JSON object, like {\"plan\": \"pro\"}.");
                    None
                }
            }
        };
        if shown.has_errors() {
            return None;
        }
        Some(Settings {
            name,
            owner_id,
            scopes,
            ip_allowlist: ip_allowlist?,
            ratelimit,
            credits,
            meta: meta?,
        })
    }

    fn credits(&self, shown: &mut FormState) -> Option<Credits> {
        let remaining = shown.number("credits_remaining", &self.credits_remaining);
        let refill_amount = shown.number("refill_amount", &self.refill_amount);
        let interval = match self.refill_interval.as_str() {
            "daily" => Some(RefillInterval::Daily),
            "monthly" | "" => Some(RefillInterval::Monthly),
            _ => None,
        };
        match (remaining, refill_amount) {
            (None, None) => None,
            (None, Some(_)) => {
                shown.error("credits_remaining", "Give the starting credits too.");
                None
            }
            (Some(remaining), amount) => {
                let refill = amount
                    .zip(interval)
                    .map(|(amount, interval)| Refill { amount, interval });
                shown.parsed(
                    "credits_remaining",
                    Credits { remaining, refill }.validate(),
                )
            }
        }
    }
}

/// The allowlist, one entry per line (or separated by commas or spaces); a wrong entry is
/// named by its place and what was typed, beside the field.
fn read_allowlist(raw: &str, shown: &mut FormState) -> Option<IpAllowlist> {
    let entries = split_list(raw);
    if let Some((place, wrong)) = entries
        .iter()
        .enumerate()
        .find(|(_, entry)| IpAllowlist::parse(std::slice::from_ref(*entry)).is_err())
    {
        let place = place + 1;
        shown.error(
            "ip_allowlist",
            format!(
                "Entry {place} (“{wrong}”) is not an IP address or CIDR range, like 203.0.113.7 \
                 or 10.0.0.0/8."
            ),
        );
        return None;
    }
    shown.parsed("ip_allowlist", IpAllowlist::parse(&entries))
}

/// A text field's value, unless it was left empty.
pub fn optional(raw: &str) -> Option<&str> {
    Some(raw.trim()).filter(|s| !s.is_empty())
}
