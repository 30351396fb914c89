//! Reading keys: one, a filtered page, and a rotation family.

use super::*;

/// Which keys a list shows, each part valid: built by the API from its query string and by the
/// dashboard from its filter form.
#[derive(Clone, Debug, Default)]
pub struct KeyListFilter {
    /// Only this keyspace's keys. `Some(None)`: an id that cannot name a keyspace, so nothing
    /// matches.
    pub keyspace_id: Option<Option<KeyspaceId>>,
    pub owner_id: Option<String>,
    pub status: Option<KeyStatus>,
    /// Case-insensitive part of the name.
    pub name_contains: Option<String>,
}

impl KeyListFilter {
    /// Reads the free-text parts as a caller sends them (errors name `keyspace_id`, `owner_id`
    /// and `q`); an empty one filters nothing.
    pub fn parse(
        keyspace_id: Option<String>,
        owner_id: Option<String>,
        status: Option<KeyStatus>,
        q: Option<String>,
    ) -> Result<Self, ManageError> {
        Ok(Self {
            keyspace_id: parse_filter("keyspace_id", keyspace_id)?.map(|id| KeyspaceId::parse(&id)),
            owner_id: parse_filter("owner_id", owner_id)?,
            status,
            name_contains: parse_filter("q", q)?
                .map(|q| q.trim().to_owned())
                .filter(|q| !q.is_empty()),
        })
    }
}

pub async fn list(
    cx: &Context<'_>,
    tenant: &TenantId,
    filter: KeyListFilter,
    page: PageRequest,
) -> Result<Page<Key>, ManageError> {
    let filter = KeyFilter {
        keyspace_id: match filter.keyspace_id {
            None => None,
            Some(Some(keyspace)) => Some(keyspace.into_string()),
            Some(None) => return Ok(Page::empty()),
        },
        owner_id: filter.owner_id,
        status: filter.status,
        name_contains: filter.name_contains,
    };
    let tenant = tenant.clone();
    let at = cx.clock.now();
    let keys = {
        let page = page.clone();
        cx.store
            .run(move |conn| {
                let rows = api_keys::list(
                    conn,
                    &tenant,
                    &filter,
                    page.before.as_deref(),
                    page.fetch_limit(),
                    at,
                )?;
                Key::load_all(conn, &tenant, rows, at)
            })
            .await?
    };
    Ok(page.page(keys, |k| &k.row.id, |k| k))
}

pub async fn get(cx: &Context<'_>, tenant: &TenantId, id: &KeyId) -> Result<Key, ManageError> {
    let (tenant, id) = (tenant.clone(), id.clone());
    let at = cx.clock.now();
    cx.store
        .run(move |conn| {
            let row = api_keys::find(conn, &tenant, id.as_str())?.ok_or_else(key_not_found)?;
            Ok(Key::load(conn, &tenant, row, at)?)
        })
        .await
}

/// Every key of `id`'s rotation family, oldest first.
pub async fn family(
    cx: &Context<'_>,
    tenant: &TenantId,
    id: &KeyId,
) -> Result<Vec<Key>, ManageError> {
    let (tenant, id) = (tenant.clone(), id.clone());
    let at = cx.clock.now();
    cx.store
        .run(move |conn| {
            let key = api_keys::find(conn, &tenant, id.as_str())?.ok_or_else(key_not_found)?;
            let rows = api_keys::family(conn, &tenant, &key.family_id)?;
            Ok(Key::load_all(conn, &tenant, rows, at)?)
        })
        .await
}
