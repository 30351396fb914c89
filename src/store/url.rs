//! `DATABASE_URL`: which store it names, and where an embedded one keeps its files.

use std::path::{Path, PathBuf};

/// Why a `DATABASE_URL` was refused; the message never holds the URL (it may hold a password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidDatabaseUrl(pub String);

/// Which store a `DATABASE_URL` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseUrl {
    Postgres(String),
    Sqlite(PathBuf),
}

impl DatabaseUrl {
    /// Parses the scheme; `sqlite://relative/path`, `sqlite:///absolute/path` and `postgres(ql)://…`.
    pub fn parse(raw: &str) -> Result<Self, InvalidDatabaseUrl> {
        let invalid = InvalidDatabaseUrl;
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return Ok(Self::Postgres(raw.to_owned()));
        }
        if let Some(path) = raw.strip_prefix("sqlite://") {
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(invalid("sqlite:// needs a file path".into()));
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        let scheme = raw.split("://").next().filter(|s| *s != raw);
        Err(invalid(match scheme {
            Some(scheme) => format!("unknown scheme `{scheme}://`; use postgres:// or sqlite://"),
            None => {
                "expected a URL such as postgres://user@host/db or sqlite://data/latchkey.db".into()
            }
        }))
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }

    /// A form safe to log: the password of a PostgreSQL URL is masked.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite://{}", path.display()),
            Self::Postgres(url) => redact_url_password(url),
        }
    }
}

fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// The directory holding an embedded database file (created on demand by the store).
pub fn data_dir_of(db_path: &Path) -> PathBuf {
    match db_path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_password_is_redacted() {
        let url = DatabaseUrl::parse("postgres://u:hunter2@db:5432/x").unwrap();
        assert_eq!(url.redacted(), "postgres://u:***@db:5432/x");
    }
}
