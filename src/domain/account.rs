//! Dashboard accounts and tenants: the rules for e-mail addresses and tenant names.

/// Normalises and checks an e-mail address (lower case, one `@`, something on both sides).
pub fn parse_email(raw: &str) -> Option<String> {
    let email = raw.trim().to_lowercase();
    let (local, domain) = email.split_once('@')?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then_some(email)
}

/// Trims a tenant name and checks its length (1 to 100 characters).
pub fn parse_tenant_name(raw: &str) -> Option<String> {
    let name = raw.trim();
    let chars = name.chars().count();
    ((1..=100).contains(&chars) && !name.chars().any(char::is_control)).then(|| name.to_owned())
}

/// An e-mail address, normalised by [`parse_email`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Option<Self> {
        parse_email(raw).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tenant name, trimmed and checked by [`parse_tenant_name`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantName(String);

impl TenantName {
    pub fn parse(raw: &str) -> Option<Self> {
        parse_tenant_name(raw).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
