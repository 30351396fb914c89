//! Reading keys: one, a filtered page, and a rotation family.

use super::*;

/// What a caller may ask to see in a list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub keyspace_id: Option<String>,
    pub owner_id: Option<String>,
    pub status: Option<KeyStatus>,
    pub q: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

pub async fn list(
    cx: &Context<'_>,
    tenant: &TenantId,
    query: ListQuery,
) -> Result<Page<KeyView>, ManageError> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let filter = KeyFilter {
        keyspace_id: parse_filter("keyspace_id", query.keyspace_id)?,
        owner_id: parse_filter("owner_id", query.owner_id)?,
        status: query.status,
        name_contains: parse_filter("q", query.q)?
            .map(|q| q.trim().to_owned())
            .filter(|q| !q.is_empty()),
    };
    let tenant = tenant.clone();
    let at = cx.clock.now();
    let rows = {
        let page = page.clone();
        cx.store
            .run(move |conn| {
                api_keys::list(
                    conn,
                    &tenant,
                    &filter,
                    page.before.as_deref(),
                    page.fetch_limit(),
                    at,
                )
            })
            .await?
    };
    Ok(page.page(rows, |r| &r.id, |r| KeyView::from_row(r, at)))
}

pub async fn get(cx: &Context<'_>, tenant: &TenantId, id: &KeyId) -> Result<KeyView, ManageError> {
    let (tenant, id) = (tenant.clone(), id.clone());
    cx.store
        .run(move |conn| api_keys::find(conn, &tenant, id.as_str()))
        .await?
        .map(|row| KeyView::from_row(row, cx.clock.now()))
        .ok_or_else(key_not_found)
}

/// Every key of `id`'s rotation family, oldest first.
pub async fn family(
    cx: &Context<'_>,
    tenant: &TenantId,
    id: &KeyId,
) -> Result<Vec<KeyView>, ManageError> {
    let (tenant, id) = (tenant.clone(), id.clone());
    let at = cx.clock.now();
    cx.store
        .run(move |conn| {
            let key = api_keys::find(conn, &tenant, id.as_str())?.ok_or_else(key_not_found)?;
            let rows = api_keys::family(conn, &tenant, &key.family_id)?;
            Ok(rows.into_iter().map(|r| KeyView::from_row(r, at)).collect())
        })
        .await
}
