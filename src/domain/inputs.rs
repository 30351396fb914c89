//! Validated inputs: what a key or keyspace may be configured with, parsed once at the edge.
//! Each `parse` names what is wrong without echoing the value.

use std::net::IpAddr;

use chrono::NaiveDateTime;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Largest serialized `meta` object.
pub const MAX_META_BYTES: usize = 8 * 1024;
/// Most CIDR entries in one allowlist.
pub const MAX_ALLOWLIST: usize = 100;
/// Longest key lifetime accepted: ten years.
pub const MAX_TTL_SECONDS: i64 = 10 * 366 * 24 * 3600;
/// Longest rate-limit window: one day.
pub const MAX_WINDOW_SECONDS: i32 = 86_400;
/// Largest credit balance or refill amount.
pub const MAX_CREDITS: i64 = 1_000_000_000_000;

/// A display name: 1–200 characters after trimming, no control characters.
pub fn parse_name(raw: &str) -> Result<String, &'static str> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("must not be empty");
    }
    if name.chars().count() > 200 {
        return Err("must be at most 200 characters");
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    Ok(name.to_owned())
}

/// The tenant's own identifier for whoever holds a key: 1–200 characters, no control characters.
pub fn parse_owner_id(raw: &str) -> Result<String, &'static str> {
    if raw.is_empty() || raw.chars().count() > 200 {
        return Err("must be 1 to 200 characters");
    }
    if raw.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    Ok(raw.to_owned())
}

/// Free-form metadata returned with every verification: a JSON object of at most 8 KiB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta(Map<String, Value>);

impl Meta {
    pub fn parse(value: Value) -> Result<Self, String> {
        let Value::Object(map) = value else {
            return Err("must be a JSON object".into());
        };
        let size = serde_json::to_string(&map)
            .map(|s| s.len())
            .unwrap_or(usize::MAX);
        if size > MAX_META_BYTES {
            return Err(format!("must be at most {MAX_META_BYTES} bytes as JSON"));
        }
        Ok(Self(map))
    }

    pub fn empty() -> Self {
        Self(Map::new())
    }

    /// Reads a stored value (trusted; an unreadable one becomes empty rather than failing reads).
    pub fn from_stored(text: &str) -> Self {
        match serde_json::from_str(text) {
            Ok(Value::Object(map)) => Self(map),
            _ => Self::empty(),
        }
    }

    pub fn to_json_string(&self) -> String {
        Value::Object(self.0.clone()).to_string()
    }

    pub fn to_value(&self) -> Value {
        Value::Object(self.0.clone())
    }
}

/// Client networks a key may be used from. Empty means anywhere.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct IpAllowlist(Vec<IpNet>);

impl TryFrom<Vec<String>> for IpAllowlist {
    type Error = String;
    fn try_from(raw: Vec<String>) -> Result<Self, String> {
        IpAllowlist::parse(&raw)
    }
}

impl From<IpAllowlist> for Vec<String> {
    fn from(list: IpAllowlist) -> Self {
        list.to_strings()
    }
}

impl IpAllowlist {
    /// Accepts CIDRs (`10.0.0.0/8`, `2001:db8::/32`) and single addresses (as /32 or /128).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        if entries.len() > MAX_ALLOWLIST {
            return Err(format!("at most {MAX_ALLOWLIST} entries"));
        }
        let mut nets = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let entry = entry.as_ref().trim();
            let net = entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("entry {i} is not an IP address or CIDR"))?;
            nets.push(net.trunc());
        }
        nets.sort();
        nets.dedup();
        Ok(Self(nets))
    }

    pub fn from_stored(text: &str) -> Self {
        let entries: Vec<String> = serde_json::from_str(text).unwrap_or_default();
        Self::parse(&entries).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        // An IPv4 client seen through an IPv6 socket is still the IPv4 client.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.0.iter().any(|net| net.contains(&ip))
    }

    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }

    pub fn to_json_string(&self) -> String {
        serde_json::to_string(&self.to_strings()).unwrap_or_else(|_| "[]".into())
    }
}

/// At most `limit` verifications per `window_seconds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Verifications allowed per window (1 to 1,000,000).
    pub limit: i32,
    /// Window length in seconds (1 to 86,400).
    pub window_seconds: i32,
}

impl RateLimit {
    pub fn validate(self) -> Result<Self, String> {
        if !(1..=1_000_000).contains(&self.limit) {
            return Err("limit must be between 1 and 1000000".into());
        }
        if !(1..=MAX_WINDOW_SECONDS).contains(&self.window_seconds) {
            return Err(format!(
                "window_seconds must be between 1 and {MAX_WINDOW_SECONDS}"
            ));
        }
        Ok(self)
    }

    pub fn from_stored(limit: Option<i32>, window: Option<i32>) -> Option<Self> {
        Some(Self {
            limit: limit?,
            window_seconds: window?,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RefillInterval {
    Daily,
    Monthly,
}

impl RefillInterval {
    /// Every interval, in declaration order.
    pub const ALL: [Self; 2] = [Self::Daily, Self::Monthly];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Daily => "daily",
            Self::Monthly => "monthly",
        }
    }

    pub fn from_stored(text: &str) -> Option<Self> {
        match text {
            "daily" => Some(Self::Daily),
            "monthly" => Some(Self::Monthly),
            _ => None,
        }
    }

    /// The start of the refill period containing `at` (UTC midnight, or the 1st of the month).
    pub fn period_start(self, at: NaiveDateTime) -> NaiveDateTime {
        use chrono::Datelike;
        let day = at.date();
        let start = match self {
            Self::Daily => day,
            Self::Monthly => day.with_day(1).unwrap_or(day),
        };
        start.and_hms_opt(0, 0, 0).unwrap_or(at)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refill {
    /// The balance is reset to this amount at the start of each interval.
    pub amount: i64,
    pub interval: RefillInterval,
}

/// A usage budget: each verification costs `cost` credits; at zero the key answers `USAGE_EXCEEDED`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credits {
    pub remaining: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refill: Option<Refill>,
}

impl Credits {
    pub fn validate(self) -> Result<Self, String> {
        if !(0..=MAX_CREDITS).contains(&self.remaining) {
            return Err(format!("remaining must be between 0 and {MAX_CREDITS}"));
        }
        if let Some(refill) = self.refill
            && !(1..=MAX_CREDITS).contains(&refill.amount)
        {
            return Err(format!("refill.amount must be between 1 and {MAX_CREDITS}"));
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn all_lists_every_refill_interval_in_order_under_its_stored_name() {
        for (index, interval) in RefillInterval::ALL.into_iter().enumerate() {
            assert_eq!(interval as usize, index);
            assert_eq!(
                RefillInterval::from_stored(interval.as_str()),
                Some(interval)
            );
            assert_eq!(serde_json::to_value(interval).unwrap(), interval.as_str());
            // A new interval breaks this match: list it in ALL too.
            match interval {
                RefillInterval::Daily | RefillInterval::Monthly => {}
            }
        }
    }

    #[test]
    fn meta_must_be_a_small_object() {
        assert!(Meta::parse(json!({"plan": "pro"})).is_ok());
        assert!(Meta::parse(json!([1])).is_err());
        assert!(Meta::parse(json!("x")).is_err());
        assert!(Meta::parse(json!({"big": "x".repeat(MAX_META_BYTES)})).is_err());
    }

    #[test]
    fn allowlist_accepts_cidrs_and_addresses() {
        let list = IpAllowlist::parse(&["10.1.2.3/8", "2001:db8::1", " 192.168.0.1 "]).unwrap();
        assert_eq!(
            list.to_strings(),
            vec!["10.0.0.0/8", "192.168.0.1/32", "2001:db8::1/128"]
        );
        assert!(list.allows("10.200.0.1".parse().unwrap()));
        assert!(list.allows("::ffff:10.0.0.1".parse().unwrap()));
        assert!(!list.allows("11.0.0.1".parse().unwrap()));
        assert!(IpAllowlist::parse(&["10.0.0.0/33"]).is_err());
        assert!(IpAllowlist::parse(&["example.com"]).is_err());
    }

    #[test]
    fn limits_and_credits_are_bounded() {
        assert!(
            RateLimit {
                limit: 0,
                window_seconds: 60
            }
            .validate()
            .is_err()
        );
        assert!(
            RateLimit {
                limit: 10,
                window_seconds: 0
            }
            .validate()
            .is_err()
        );
        assert!(
            RateLimit {
                limit: 10,
                window_seconds: 60
            }
            .validate()
            .is_ok()
        );
        assert!(
            Credits {
                remaining: -1,
                refill: None
            }
            .validate()
            .is_err()
        );
        let refill = Some(Refill {
            amount: 0,
            interval: RefillInterval::Daily,
        });
        assert!(
            Credits {
                remaining: 5,
                refill
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn refill_periods() {
        let at = chrono::NaiveDate::from_ymd_opt(2026, 11, 23)
            .unwrap()
            .and_hms_opt(15, 4, 5)
            .unwrap();
        assert_eq!(
            RefillInterval::Daily.period_start(at).to_string(),
            "2026-11-23 00:00:00"
        );
        assert_eq!(
            RefillInterval::Monthly.period_start(at).to_string(),
            "2026-11-01 00:00:00"
        );
    }
}
