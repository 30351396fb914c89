//! The store: one diesel connection type over PostgreSQL or embedded SQLite, its pool and migrations.
//!
//! Nothing above this module knows which database it talks to; backend branches live here and
//! only where the SQL really differs.

pub mod api_keys;
pub mod audit_events;
pub mod invitations;
pub mod keyspaces;
pub mod memberships;
pub mod models;
pub mod root_keys;
pub mod schema;
pub mod sessions;
pub mod tenants;
pub mod usage;
pub mod users;

use std::path::Path;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::config::DatabaseUrl;

const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
/// Arbitrary constant naming latchkey's migration lock among PostgreSQL advisory locks.
const MIGRATION_LOCK_ID: i64 = 0x6c61_7463_686b_6579; // "latchkey"

/// One connection to whichever backend `DATABASE_URL` names.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

pub type DbPool = Pool<ConnectionManager<DbConnection>>;
pub type PooledDb = PooledConnection<ConnectionManager<DbConnection>>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("a background task failed: {0}")]
    Task(String),
}

impl StoreError {
    /// Whether this error is a unique-constraint violation (a conflict the caller can explain).
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            Self::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }
}

/// Sets per-connection SQLite pragmas; PostgreSQL needs none.
#[derive(Debug)]
struct ConnectionSetup;

impl CustomizeConnection<DbConnection, diesel::r2d2::Error> for ConnectionSetup {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), diesel::r2d2::Error> {
        if let DbConnection::Sqlite(conn) = conn {
            conn.batch_execute(
                "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; \
                 PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
            )
            .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

/// The shared handle to the store: a pool, cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: DbPool,
    is_postgres: bool,
}

impl Store {
    /// Connects (creating the SQLite file and its directory if needed) and checks one connection.
    pub fn connect(url: &DatabaseUrl, pool_size: u32) -> Result<Self, StoreError> {
        let (conn_url, is_postgres, size) = match url {
            DatabaseUrl::Postgres(url) => (url.clone(), true, pool_size),
            DatabaseUrl::Sqlite(path) => {
                ensure_parent_dir(path)?;
                // WAL lets readers run beside the single writer; more connections only queue.
                (path.to_string_lossy().into_owned(), false, pool_size.min(8))
            }
        };
        let manager = ConnectionManager::<DbConnection>::new(conn_url);
        let pool = Pool::builder()
            .max_size(size)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(5))
            .connection_customizer(Box::new(ConnectionSetup))
            // Connection errors surface as `StoreError::Unavailable` where they matter (and are
            // logged there once), instead of one log line per retry.
            .error_handler(Box::new(diesel::r2d2::NopErrorHandler))
            .build(manager)
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot connect to {}: {e}", url.redacted()))
            })?;
        Ok(Self { pool, is_postgres })
    }

    pub fn is_postgres(&self) -> bool {
        self.is_postgres
    }

    /// A connection from the pool, for blocking code (CLI, migrations, inside `run`).
    pub fn conn(&self) -> Result<PooledDb, StoreError> {
        self.pool
            .get()
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    /// Runs blocking store work on the blocking thread pool so request handlers never block.
    pub async fn run<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let store = self.clone();
        actix_web::rt::task::spawn_blocking(move || {
            let mut conn = store.conn()?;
            work(&mut conn)
        })
        .await
        .map_err(|e| E::from(StoreError::Task(e.to_string())))?
    }

    /// Like [`Store::run`], inside one transaction: all of it is written or none of it.
    pub async fn transaction<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + From<diesel::result::Error> + Send + 'static,
    {
        self.run(move |conn| conn.transaction(work)).await
    }

    /// Checks that the store answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run(|conn| {
            diesel::sql_query("SELECT 1").execute(conn)?;
            Ok(())
        })
        .await
    }

    /// Applies pending migrations; on PostgreSQL under an advisory lock so nodes starting
    /// together do not race.
    pub fn migrate(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn()?;
        run_migrations(&mut conn)
    }
}

fn ensure_parent_dir(path: &Path) -> Result<(), StoreError> {
    let dir = crate::config::data_dir_of(path);
    std::fs::create_dir_all(&dir).map_err(|e| {
        StoreError::Unavailable(format!("cannot create directory {}: {e}", dir.display()))
    })
}

/// Applies every pending migration on `conn` and returns the names applied.
pub fn run_migrations(conn: &mut DbConnection) -> Result<Vec<String>, StoreError> {
    let applied = match conn {
        DbConnection::Postgres(pg) => {
            diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_ID})"))
                .execute(pg)?;
            let result = pg
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|versions| versions.iter().map(ToString::to_string).collect());
            diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_ID})"))
                .execute(pg)?;
            result
        }
        DbConnection::Sqlite(sqlite) => sqlite
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map(|versions| versions.iter().map(ToString::to_string).collect()),
    };
    applied.map_err(|e| StoreError::Migration(e.to_string()))
}

/// Reverts every applied migration (used by the migration round-trip test).
pub fn revert_all_migrations(conn: &mut DbConnection) -> Result<(), StoreError> {
    let result = match conn {
        DbConnection::Postgres(pg) => pg.revert_all_migrations(POSTGRES_MIGRATIONS).map(drop),
        DbConnection::Sqlite(sqlite) => sqlite.revert_all_migrations(SQLITE_MIGRATIONS).map(drop),
    };
    result.map_err(|e| StoreError::Migration(e.to_string()))
}

/// Current UTC time at the precision both backends store (microseconds).
pub fn now() -> chrono::NaiveDateTime {
    use chrono::{DurationRound, TimeDelta};
    let now = chrono::Utc::now().naive_utc();
    now.duration_trunc(TimeDelta::microseconds(1))
        .unwrap_or(now)
}
