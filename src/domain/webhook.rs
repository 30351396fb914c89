//! Webhooks as the domain sees them: the event vocabulary, endpoint URLs (and which addresses
//! they may reach), the signing secret and Standard Webhooks signatures, and the retry schedule.

use std::fmt;
use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{NaiveDateTime, TimeDelta};
use hmac::{Hmac, Mac};
use rand::TryRngCore as _;
use rand::rngs::OsRng;
use secrecy::zeroize::Zeroizing;
use sha2::Sha256;

/// Every event type an endpoint may subscribe to. Some have no source yet (the policy job will
/// emit the expiry and credit warnings); subscribing to them now is allowed, so an endpoint
/// need not be changed when they start flowing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventType {
    KeyCreated,
    KeyUpdated,
    KeyDisabled,
    KeyEnabled,
    KeyRotated,
    KeyRevoked,
    KeyLeaked,
    KeyExpiring,
    KeyExpired,
    CreditsLow,
    CreditsExhausted,
    RootKeyCreated,
    RootKeyRevoked,
    MemberAdded,
    MemberRemoved,
    WebhookTest,
    /// An endpoint of the tenant was disabled after days of failed deliveries.
    WebhookEndpointDisabled,
}

impl EventType {
    pub const ALL: &[EventType] = &[
        Self::KeyCreated,
        Self::KeyUpdated,
        Self::KeyDisabled,
        Self::KeyEnabled,
        Self::KeyRotated,
        Self::KeyRevoked,
        Self::KeyLeaked,
        Self::KeyExpiring,
        Self::KeyExpired,
        Self::CreditsLow,
        Self::CreditsExhausted,
        Self::RootKeyCreated,
        Self::RootKeyRevoked,
        Self::MemberAdded,
        Self::MemberRemoved,
        Self::WebhookTest,
        Self::WebhookEndpointDisabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::KeyCreated => "key.created",
            Self::KeyUpdated => "key.updated",
            Self::KeyDisabled => "key.disabled",
            Self::KeyEnabled => "key.enabled",
            Self::KeyRotated => "key.rotated",
            Self::KeyRevoked => "key.revoked",
            Self::KeyLeaked => "key.leaked",
            Self::KeyExpiring => "key.expiring",
            Self::KeyExpired => "key.expired",
            Self::CreditsLow => "credits.low",
            Self::CreditsExhausted => "credits.exhausted",
            Self::RootKeyCreated => "root_key.created",
            Self::RootKeyRevoked => "root_key.revoked",
            Self::MemberAdded => "member.added",
            Self::MemberRemoved => "member.removed",
            Self::WebhookTest => "webhook.test",
            Self::WebhookEndpointDisabled => "webhook_endpoint.disabled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|e| e.as_str() == raw)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Most event types one endpoint lists (the vocabulary, with room to grow).
pub const MAX_EVENTS: usize = 64;

/// An endpoint's subscriptions: at least one known event type, each once, sorted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventTypes(Vec<EventType>);

impl EventTypes {
    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<Self, &'static str> {
        if raw.is_empty() || raw.len() > MAX_EVENTS {
            return Err("give 1 or more event types, such as key.revoked");
        }
        let mut events = raw
            .iter()
            .map(|r| EventType::parse(r.as_ref()).ok_or("names an unknown event type"))
            .collect::<Result<Vec<_>, _>>()?;
        events.sort();
        events.dedup();
        Ok(Self(events))
    }

    /// Reads back what [`EventTypes::to_json`] stored; unknown names (from a newer version) are
    /// skipped.
    pub fn from_json(stored: &str) -> Self {
        let names: Vec<String> = serde_json::from_str(stored).unwrap_or_default();
        Self(names.iter().filter_map(|n| EventType::parse(n)).collect())
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.to_strings()).expect("a list of strings serialises")
    }

    pub fn to_strings(&self) -> Vec<&'static str> {
        self.0.iter().map(|e| e.as_str()).collect()
    }

    pub fn contains(&self, event: EventType) -> bool {
        self.0.contains(&event)
    }
}

/// Longest endpoint URL accepted.
pub const MAX_URL_LEN: usize = 2_000;

/// What outbound deliveries may reach: operators of a private install may allow plain http and
/// private addresses (`LATCHKEY_WEBHOOK_ALLOW_HTTP`, `LATCHKEY_WEBHOOK_ALLOW_PRIVATE`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboundPolicy {
    pub allow_http: bool,
    pub allow_private: bool,
}

impl OutboundPolicy {
    /// Whether a delivery may connect to `ip`.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.allow_private || is_public(ip)
    }
}

/// An endpoint URL: absolute `https` (or `http` if allowed), with a host, without credentials
/// or fragment, and not naming a refused address literally. Names are resolved (and their
/// addresses checked again) at every delivery, since DNS may change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointUrl(url::Url);

impl EndpointUrl {
    pub fn parse(raw: &str, policy: OutboundPolicy) -> Result<Self, &'static str> {
        if raw.len() > MAX_URL_LEN {
            return Err("must be at most 2000 characters");
        }
        let url = url::Url::parse(raw.trim()).map_err(|_| "must be an absolute https URL")?;
        match url.scheme() {
            "https" => {}
            "http" if policy.allow_http => {}
            "http" => return Err("must use https"),
            _ => return Err("must be an absolute https URL"),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry a user name or password");
        }
        if url.fragment().is_some() {
            return Err("must not have a fragment");
        }
        let refused = match url.host() {
            None => return Err("must name a host"),
            Some(url::Host::Ipv4(ip)) => !policy.allows(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => !policy.allows(IpAddr::V6(ip)),
            Some(url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                !policy.allow_private && (name == "localhost" || name.ends_with(".localhost"))
            }
        };
        if refused {
            return Err("must not point to a private, loopback or link-local address");
        }
        Ok(Self(url))
    }

    /// A URL read from the store (valid when stored; the outbound checks run again at delivery).
    pub fn from_trusted(stored: &str) -> Option<Self> {
        url::Url::parse(stored).ok().map(Self)
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn as_url(&self) -> &url::Url {
        &self.0
    }
}

/// Whether `ip` is a public unicast address: not loopback, private, link-local, unique-local,
/// shared (CGNAT), unspecified, broadcast, multicast or documentation space.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared (CGNAT)
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let segments = v6.segments();
            let first = segments[0];
            // ::/96 holds the unspecified and loopback addresses and the deprecated
            // IPv4-compatible ones (::a.b.c.d), which some stacks still route to IPv4.
            !(segments[..6].iter().all(|s| *s == 0)
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || first == 0x2001 && v6.segments()[1] == 0x0db8 // documentation
                || first == 0x0064 && v6.segments()[1] == 0xff9b) // NAT64 to anything
        }
    }
}

/// Secret prefix, as the Standard Webhooks libraries expect.
const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a secret (the specification asks for 24 to 64).
const SECRET_BYTES: usize = 32;

/// An endpoint's signing secret: the HMAC key's bytes. Prints as its type name only.
#[derive(Clone)]
pub struct WebhookSecret(Zeroizing<Vec<u8>>);

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

impl WebhookSecret {
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new(vec![0u8; SECRET_BYTES]);
        OsRng
            .try_fill_bytes(&mut bytes)
            .expect("the OS CSPRNG must be available to make a webhook secret");
        Self(bytes)
    }

    pub fn from_bytes(bytes: Zeroizing<Vec<u8>>) -> Self {
        Self(bytes)
    }

    pub fn expose_bytes(&self) -> &[u8] {
        &self.0
    }

    /// `whsec_` and the base64 of the bytes: shown once, when made.
    pub fn expose_text(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&*self.0))
    }

    /// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, per the Standard Webhooks
    /// specification.
    pub fn sign(&self, message_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(message_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header: one signature per live secret, space-separated.
pub fn signature_header(
    secrets: &[WebhookSecret],
    message_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| s.sign(message_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Waits after the n-th failed attempt (1-based): about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, then
/// every 10 h (the Standard Webhooks schedule).
const RETRY_DELAYS: &[i64] = &[5, 300, 1_800, 7_200, 18_000, 36_000];
/// No attempt is scheduled later than this after the event.
pub const RETRY_FOR: TimeDelta = TimeDelta::days(3);
/// An endpoint whose deliveries failed without a success for this long is disabled.
pub const DISABLE_AFTER: TimeDelta = TimeDelta::days(5);
/// Jitter adds up to this share of the delay, so endpoints that failed together do not all
/// come back at once.
pub const JITTER: f64 = 0.1;

/// The delay after `failed` attempts, before jitter.
pub fn retry_delay(failed: u32) -> TimeDelta {
    let index = (failed.max(1) as usize - 1).min(RETRY_DELAYS.len() - 1);
    TimeDelta::seconds(RETRY_DELAYS[index])
}

/// When to try again after the `failed`-th failed attempt at `now` of an event made at
/// `created_at`; `None` once three days have passed. `jitter` is in [0, 1).
pub fn next_attempt(
    created_at: NaiveDateTime,
    now: NaiveDateTime,
    failed: u32,
    jitter: f64,
) -> Option<NaiveDateTime> {
    if now - created_at >= RETRY_FOR {
        return None;
    }
    let delay = retry_delay(failed);
    let extra = (delay.num_milliseconds() as f64 * JITTER * jitter.clamp(0.0, 1.0)) as i64;
    Some(now + delay + TimeDelta::milliseconds(extra))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: OutboundPolicy = OutboundPolicy {
        allow_http: false,
        allow_private: false,
    };

    #[test]
    fn event_names_round_trip_and_unknown_ones_are_refused() {
        for event in EventType::ALL {
            assert_eq!(EventType::parse(event.as_str()), Some(*event));
        }
        assert_eq!(EventType::parse("key.exploded"), None);
        let parsed = EventTypes::parse(&["key.revoked", "key.created", "key.revoked"]).unwrap();
        assert_eq!(parsed.to_strings(), ["key.created", "key.revoked"]);
        assert_eq!(EventTypes::from_json(&parsed.to_json()), parsed);
        assert!(EventTypes::parse::<&str>(&[]).is_err());
        assert!(EventTypes::parse(&["key.created", "nope"]).is_err());
    }

    #[test]
    fn urls_must_be_https_public_and_without_credentials() {
        assert!(EndpointUrl::parse("https://hooks.example.com/in?x=1", OPEN).is_ok());
        for bad in [
            "http://hooks.example.com/",
            "ftp://hooks.example.com/",
            "hooks.example.com",
            "https://user:pw@hooks.example.com/",
            "https://hooks.example.com/#frag",
            "https://127.0.0.1/",
            "https://[::1]/",
            "https://10.1.2.3/",
            "https://169.254.169.254/latest/meta-data",
            "https://[fe80::1]/",
            "https://[::ffff:192.168.0.1]/",
            "https://localhost/",
            "https://api.localhost./",
            "https://0.0.0.0/",
            "https://100.64.0.1/",
        ] {
            assert!(EndpointUrl::parse(bad, OPEN).is_err(), "{bad}");
        }
        let lax = OutboundPolicy {
            allow_http: true,
            allow_private: true,
        };
        assert!(EndpointUrl::parse("http://127.0.0.1:8080/hook", lax).is_ok());
        assert!(
            EndpointUrl::parse(&format!("https://a.example/{}", "x".repeat(2_000)), lax).is_err()
        );
    }

    #[test]
    fn public_addresses_are_told_from_private_ones() {
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
        for private in [
            "192.168.1.1",
            "172.16.0.1",
            "fc00::1",
            "::",
            "224.0.0.1",
            "64:ff9b::7f00:1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
    }

    /// The example of the Standard Webhooks specification (and of its libraries' tests).
    #[test]
    fn signatures_match_the_specification_example() {
        let secret = WebhookSecret::from_bytes(Zeroizing::new(
            STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(),
        ));
        let signature = secret.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(format!("{secret:?}").ends_with("(..)"));
        assert!(
            WebhookSecret::generate()
                .expose_text()
                .starts_with("whsec_")
        );
    }

    #[test]
    fn the_schedule_backs_off_with_bounded_jitter_and_stops_after_three_days() {
        let t0 = chrono::DateTime::from_timestamp(1_700_000_000, 0)
            .unwrap()
            .naive_utc();
        let expected = [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000, 36_000];
        for (i, seconds) in expected.iter().enumerate() {
            let failed = i as u32 + 1;
            let low = next_attempt(t0, t0, failed, 0.0).unwrap();
            let high = next_attempt(t0, t0, failed, 0.999).unwrap();
            assert_eq!(low - t0, TimeDelta::seconds(*seconds));
            assert!(
                high - t0 < TimeDelta::milliseconds(seconds * 1_100),
                "{failed}"
            );
        }
        assert!(next_attempt(t0, t0 + RETRY_FOR - TimeDelta::seconds(1), 9, 0.5).is_some());
        assert_eq!(next_attempt(t0, t0 + RETRY_FOR, 9, 0.5), None);
    }
}
