//! The JSON bodies of `/v1/keys`, each turned once into a domain command; the errors name the
//! body's fields.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::ScopeName;
use crate::domain::commands::{
    Expiry, ForField, Invalid, KeyChanges, MAX_BULK, NewKey, RevokeSelection, optional, patch,
};
use crate::domain::error_code::ErrorCode;
use crate::domain::ids::{KeyId, KeyspaceId};
use crate::domain::inputs::{Credits, IpAllowlist, Meta, RateLimit, parse_name, parse_owner_id};
use crate::domain::key_role::KeyRoleRefs;
use crate::domain::legacy::{parse_sha256_base64, parse_sha256_hex};
use crate::domain::scope::Scopes;
use crate::error::ApiError;
use crate::manage::keys::{ImportItem, ImportedSecret};
use crate::routes::api::double_option;

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"keyspace_id": "019a5f0e-7c1d-7b2a-9d4e-3f2a1b0c9d8e", "name": "Acme Corp production",
    "owner_id": "customer_42", "scopes": ["documents:read", "documents:write"],
    "meta": {"plan": "pro"}, "ttl_seconds": 2592000, "ip_allowlist": ["203.0.113.0/24"],
    "roles": ["billing-reader"], "ratelimit": {"limit": 100, "window_seconds": 60},
    "credits": {"remaining": 1000, "refill": {"amount": 1000, "interval": "monthly"}}}))]
pub struct CreateKey {
    #[schema(format = Uuid)]
    pub keyspace_id: String,
    pub name: Option<String>,
    /// Your own identifier for whoever holds the key (a user or customer id).
    pub owner_id: Option<String>,
    /// Defaults to the keyspace's default scopes.
    #[schema(value_type = Option<Vec<ScopeName>>)]
    pub scopes: Option<Vec<String>>,
    /// Key roles (ids or names, at most 16) whose scopes the key holds besides its own.
    #[schema(max_items = 16)]
    pub roles: Option<Vec<String>>,
    /// A JSON object of at most 8 KiB, returned with every verification.
    #[schema(value_type = Option<HashMap<String, Value>>)]
    pub meta: Option<Value>,
    /// Absolute expiry (RFC 3339, in the future). Give this or `ttl_seconds`, not both.
    pub expires_at: Option<DateTime<Utc>>,
    /// Lifetime from now; defaults to the keyspace's default ttl.
    pub ttl_seconds: Option<i64>,
    /// CIDRs or addresses the key may be used from; empty means anywhere.
    pub ip_allowlist: Option<Vec<String>>,
    /// Defaults to the keyspace's default rate limit.
    pub ratelimit: Option<RateLimit>,
    pub credits: Option<Credits>,
    /// Default true.
    pub enabled: Option<bool>,
}

impl CreateKey {
    /// What makes two create requests the same: SHA-256 of the request as JSON, with every
    /// object's keys sorted and absent fields left out. Whitespace, the order of fields (in
    /// `meta` too) and `null` for an absent field do not count, and a field added to
    /// [`CreateKey`] later does not change the fingerprint of requests without it. The prefix
    /// names this form.
    pub fn fingerprint(&self) -> Vec<u8> {
        let mut request = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(fields) = &mut request {
            fields.retain(|_, value| !value.is_null());
        }
        let mut hash = Sha256::new();
        hash.update(b"create-key-v1\0");
        hash.update(sorted(request).to_string().as_bytes());
        hash.finalize().to_vec()
    }
}

/// `value` with the keys of every object in order (whatever order the map type keeps).
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut fields: Vec<(String, Value)> = map.into_iter().collect();
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(fields.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

impl TryFrom<CreateKey> for NewKey {
    type Error = Invalid;

    fn try_from(body: CreateKey) -> Result<Self, Invalid> {
        let allowlist = body.ip_allowlist.unwrap_or_default();
        Ok(Self {
            name: optional("name", body.name.as_deref(), parse_name)?,
            owner_id: optional("owner_id", body.owner_id.as_deref(), parse_owner_id)?,
            scopes: optional("scopes", body.scopes.as_deref(), Scopes::parse)?,
            meta: optional("meta", body.meta, Meta::parse)?.unwrap_or_else(Meta::empty),
            expiry: Expiry::from_fields(body.expires_at, body.ttl_seconds)?,
            ip_allowlist: IpAllowlist::parse(&allowlist).for_field("ip_allowlist")?,
            ratelimit: optional("ratelimit", body.ratelimit, RateLimit::validate)?,
            credits: optional("credits", body.credits, Credits::validate)?,
            keyspace_id: KeyspaceId::parse(&body.keyspace_id)
                .ok_or_else(|| Invalid::new("keyspace_id", "no such keyspace"))?,
            enabled: body.enabled.unwrap_or(true),
            roles: KeyRoleRefs::parse(body.roles.unwrap_or_default()).for_field("roles")?,
        })
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"scopes": ["documents:read"], "roles": ["billing-reader"], "enabled": false}))]
pub struct UpdateKey {
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub owner_id: Option<Option<String>>,
    #[schema(value_type = Option<Vec<ScopeName>>)]
    pub scopes: Option<Vec<String>>,
    /// The key's whole set of roles (ids or names, at most 16); `[]` takes every role away.
    #[schema(max_items = 16)]
    pub roles: Option<Vec<String>>,
    #[schema(value_type = Option<HashMap<String, Value>>)]
    pub meta: Option<Value>,
    /// `null` removes the expiry.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub expires_at: Option<Option<DateTime<Utc>>>,
    pub ip_allowlist: Option<Vec<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<RateLimit>)]
    pub ratelimit: Option<Option<RateLimit>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Credits>)]
    pub credits: Option<Option<Credits>>,
    /// Disabling is reversible (unlike revoking).
    pub enabled: Option<bool>,
}

impl TryFrom<UpdateKey> for KeyChanges {
    type Error = Invalid;

    fn try_from(body: UpdateKey) -> Result<Self, Invalid> {
        Ok(Self {
            name: patch("name", body.name, |name| parse_name(&name))?,
            owner_id: patch("owner_id", body.owner_id, |owner| parse_owner_id(&owner))?,
            scopes: optional("scopes", body.scopes.as_deref(), Scopes::parse)?,
            meta: optional("meta", body.meta, Meta::parse)?,
            expires_at: body.expires_at,
            ip_allowlist: optional("ip_allowlist", body.ip_allowlist.as_deref(), |list| {
                IpAllowlist::parse(list)
            })?,
            ratelimit: patch("ratelimit", body.ratelimit, RateLimit::validate)?,
            credits: patch("credits", body.credits, Credits::validate)?,
            enabled: body.enabled,
            roles: optional("roles", body.roles.as_deref(), KeyRoleRefs::parse)?,
        })
    }
}

/// A bulk revocation: exactly one of the selectors.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"owner_id": "customer_42", "reason": "customer offboarded"}))]
pub struct BulkRevoke {
    /// Key ids (at most 1,000).
    pub ids: Option<Vec<String>>,
    /// Every key of this owner.
    pub owner_id: Option<String>,
    /// Every key of this keyspace.
    pub keyspace_id: Option<String>,
    /// Raw key values, e.g. found in a leak (at most 1,000). The answer does not say which existed.
    pub keys: Option<Vec<String>>,
    pub reason: Option<String>,
}

impl BulkRevoke {
    /// The keys it selects, and the reason.
    pub fn into_command(self) -> Result<(RevokeSelection, Option<String>), ApiError> {
        let given = [
            self.ids.is_some(),
            self.owner_id.is_some(),
            self.keyspace_id.is_some(),
            self.keys.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidSelector,
                "give exactly one of ids, owner_id, keyspace_id or keys",
            ));
        }
        let selection = if let Some(ids) = self.ids {
            if ids.is_empty() || ids.len() > MAX_BULK {
                return Err(Invalid::new("ids", format!("give 1 to {MAX_BULK} ids")).into());
            }
            // Malformed ids cannot match anything; drop them rather than fail the batch.
            RevokeSelection::Ids(ids.iter().filter_map(|id| KeyId::parse(id)).collect())
        } else if let Some(owner) = self.owner_id {
            RevokeSelection::Owner(parse_owner_id(&owner).for_field("owner_id")?)
        } else if let Some(keyspace) = self.keyspace_id {
            RevokeSelection::Keyspace(KeyspaceId::parse(&keyspace))
        } else {
            let keys = self.keys.unwrap_or_default();
            if keys.is_empty() || keys.len() > MAX_BULK {
                return Err(Invalid::new("keys", format!("give 1 to {MAX_BULK} keys")).into());
            }
            RevokeSelection::Keys(keys.into_iter().map(SecretString::from).collect())
        };
        Ok((selection, self.reason))
    }
}

/// `POST /v1/keys/import`: keys made by another system.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"keys": [{"external_ref": "unkey:key_3ZkPsQk", "sha256_base64": "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=",
    "start": "uk_3ZkP", "keyspace_id": "019a5f0e-7c1d-7b2a-9d4e-3f2a1b0c9d8e", "owner_id": "customer_42", "scopes": ["documents:read"]}]}))]
pub struct ImportKeys {
    /// 1 to 1,000 keys.
    #[schema(min_items = 1, max_items = 1000)]
    pub keys: Vec<ImportKey>,
}

/// One key to import: exactly one of `key`, `sha256_hex` and `sha256_base64`, an
/// `external_ref`, and the fields of a create (as in `POST /v1/keys`). The create fields are
/// repeated here rather than flattened: a flattened body could not refuse unknown fields.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportKey {
    /// Your id for the key in the system it comes from (1 to 200 printable characters): an item
    /// whose `external_ref` was imported before is answered `duplicate` with that key.
    pub external_ref: String,
    /// The plaintext key: digested on arrival, never stored. A key of this deployment, or 16 to
    /// 256 printable characters in another system's format.
    pub key: Option<String>,
    /// `SHA-256(key)` as 64 hex digits (as crates.io and GitLab store keys).
    pub sha256_hex: Option<String>,
    /// `SHA-256(key)` in base64 (as Unkey stores keys).
    pub sha256_base64: Option<String>,
    /// For a key imported by digest: its first characters, to recognise it (at most 16).
    pub start: Option<String>,
    #[schema(format = Uuid)]
    pub keyspace_id: String,
    pub name: Option<String>,
    pub owner_id: Option<String>,
    #[schema(value_type = Option<Vec<ScopeName>>)]
    pub scopes: Option<Vec<String>>,
    #[schema(value_type = Option<HashMap<String, Value>>)]
    pub meta: Option<Value>,
    pub expires_at: Option<DateTime<Utc>>,
    pub ttl_seconds: Option<i64>,
    pub ip_allowlist: Option<Vec<String>>,
    pub ratelimit: Option<RateLimit>,
    pub credits: Option<Credits>,
    pub enabled: Option<bool>,
}

/// Longest `external_ref`.
const MAX_EXTERNAL_REF_LEN: usize = 200;
/// Longest `start` of a key imported by digest.
const MAX_IMPORTED_START_LEN: usize = 16;

impl ImportKeys {
    /// The items, each validated on its own: a bad item is answered `invalid` and the others
    /// are still imported. Only a batch of the wrong size is refused whole.
    pub fn into_items(self) -> Result<Vec<Result<ImportItem, Invalid>>, Invalid> {
        if self.keys.is_empty() || self.keys.len() > MAX_BULK {
            return Err(Invalid::new("keys", format!("give 1 to {MAX_BULK} keys")));
        }
        Ok(self.keys.into_iter().map(ImportItem::try_from).collect())
    }
}

impl TryFrom<ImportKey> for ImportItem {
    type Error = Invalid;

    fn try_from(item: ImportKey) -> Result<Self, Invalid> {
        let external_ref = item.external_ref;
        if external_ref.is_empty()
            || external_ref.len() > MAX_EXTERNAL_REF_LEN
            || external_ref.chars().any(char::is_control)
        {
            return Err(Invalid::new(
                "external_ref",
                "must be 1 to 200 printable characters",
            ));
        }
        let (secret_field, secret) = match (item.key, item.sha256_hex, item.sha256_base64) {
            (Some(key), None, None) => ("key", ImportedSecret::Plaintext(SecretString::from(key))),
            (None, Some(hex), None) => (
                "sha256_hex",
                ImportedSecret::Sha256(parse_sha256_hex(&hex).for_field("sha256_hex")?),
            ),
            (None, None, Some(b64)) => (
                "sha256_base64",
                ImportedSecret::Sha256(parse_sha256_base64(&b64).for_field("sha256_base64")?),
            ),
            _ => {
                return Err(Invalid::new(
                    "key",
                    "give exactly one of key, sha256_hex and sha256_base64",
                ));
            }
        };
        let start = match item.start {
            Some(_) if matches!(secret, ImportedSecret::Plaintext(_)) => {
                return Err(Invalid::new(
                    "start",
                    "only for a key imported by digest: a plaintext shows its own",
                ));
            }
            Some(start)
                if start.len() > MAX_IMPORTED_START_LEN
                    || !start.bytes().all(|b| b.is_ascii_graphic()) =>
            {
                return Err(Invalid::new(
                    "start",
                    "must be at most 16 printable characters, no spaces",
                ));
            }
            start => start,
        };
        Ok(Self {
            external_ref,
            secret,
            start,
            secret_field,
            key: NewKey::try_from(CreateKey {
                keyspace_id: item.keyspace_id,
                name: item.name,
                owner_id: item.owner_id,
                scopes: item.scopes,
                meta: item.meta,
                expires_at: item.expires_at,
                ttl_seconds: item.ttl_seconds,
                ip_allowlist: item.ip_allowlist,
                ratelimit: item.ratelimit,
                credits: item.credits,
                enabled: item.enabled,
                // Import items take no roles (an unknown field): give them after the import.
                roles: None,
            })?,
        })
    }
}
