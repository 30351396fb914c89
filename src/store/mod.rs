//! The store: one diesel connection type over PostgreSQL or embedded SQLite, its pool and migrations.
//!
//! Nothing above this module knows which database it talks to; backend branches live here and
//! only where the SQL really differs.

pub mod api_keys;
pub mod audit_events;
pub mod deleted_keys;
pub mod invitations;
pub mod key_roles;
pub mod keyspaces;
pub mod memberships;
pub mod models;
pub mod revoked_tokens;
pub mod root_keys;
pub mod schema;
pub mod sessions;
pub mod signing_keys;
pub mod tenants;
pub mod url;
pub mod usage;
pub mod users;
pub mod webhooks;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{CustomizeConnection, HandleError, Pool, PooledConnection, R2D2Connection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::breaker::{Admitted, Breaker};
use crate::metrics::Metrics;
use crate::sync::lock;
use url::DatabaseUrl;

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

pub type DbPool = Pool<Connector>;
pub type PooledDb = PooledConnection<Connector>;

/// Opens connections of the configured backend only. (diesel's `MultiConnection::establish` tries
/// every backend in turn: a refused PostgreSQL connection was retried as a SQLite file named like
/// the URL, and the real cause replaced by "Invalid connection url for multiconnection".)
#[derive(Clone, Debug)]
pub struct Connector {
    url: String,
    postgres: bool,
}

impl diesel::r2d2::ManageConnection for Connector {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        let conn = if self.postgres {
            PgConnection::establish(&self.url).map(DbConnection::Postgres)
        } else {
            SqliteConnection::establish(&self.url).map(DbConnection::Sqlite)
        };
        conn.map_err(diesel::r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        conn.is_broken()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The breaker is open: the store is known to be down and was not asked.
    #[error("the store is down (circuit breaker open)")]
    Down,
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("a background task failed: {0}")]
    Task(String),
}

impl StoreError {
    /// This error for another caller that waited on the same read (a coalesced load): the same
    /// kind of unavailability, or what went wrong as an unavailability.
    pub fn shared(&self) -> Self {
        match self {
            Self::Down => Self::Down,
            other => Self::Unavailable(other.to_string()),
        }
    }

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

/// How long a checkout waits for a connection while the pool is healthy (all in use: wait for one).
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a checkout waits while connecting to the store fails: a down store is not going to
/// hand out a connection in the next seconds, and callers (verify) must fail closed at once
/// instead of holding a request for the full timeout.
const FAILING_CHECKOUT_TIMEOUT: Duration = Duration::from_millis(250);

/// Whether the last attempt to connect to (or validate a connection of) the store failed, and why.
#[derive(Debug, Default)]
struct Failing {
    failing: AtomicBool,
    /// The last connection error, for the breaker's log line (r2d2 hands it to one caller only).
    why: std::sync::Mutex<String>,
}

impl Failing {
    fn set(&self, failing: bool, why: impl FnOnce() -> String) {
        if failing {
            *lock(&self.why) = one_line(&why());
        }
        self.failing.store(failing, Ordering::Release);
    }

    fn get(&self) -> bool {
        self.failing.load(Ordering::Acquire)
    }

    fn why(&self) -> String {
        lock(&self.why).clone()
    }
}

/// A driver message on one line (libpq's span several, with hints on their own lines).
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Records connection failures, instead of one log line per retry.
#[derive(Debug)]
struct ConnectionErrors(Arc<Failing>);

impl HandleError<diesel::r2d2::Error> for ConnectionErrors {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        self.0.set(true, || error.to_string());
    }
}

/// Sets per-connection SQLite pragmas (PostgreSQL needs none) and notes that connecting works.
#[derive(Debug)]
struct ConnectionSetup(Arc<Failing>);

impl CustomizeConnection<DbConnection, diesel::r2d2::Error> for ConnectionSetup {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), diesel::r2d2::Error> {
        if let DbConnection::Sqlite(conn) = conn {
            conn.batch_execute(
                "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; \
                 PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
            )
            .map_err(diesel::r2d2::Error::QueryError)?;
        }
        self.0.set(false, String::new);
        Ok(())
    }
}

/// How long store access is skipped after a connection failure; the heartbeat keeps it open
/// (every [`PROBE_EVERY`]) for as long as its probe fails, so no request waits on a down store.
const BREAKER_OPEN: Duration = Duration::from_secs(1);
/// How often the heartbeat checks that the store answers (and, while the breaker is open,
/// whether it is back).
pub const PROBE_EVERY: Duration = Duration::from_millis(250);
/// How long r2d2 waits for its first connections at start; its reconnection backoff is capped
/// at half of it, so once the store is back the pool has connections again within a second.
const POOL_CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether the store answers: a [`Breaker`] over connection failures and checkout timeouts
/// (never over a query's own error, such as a unique violation), with its metrics.
struct Health {
    breaker: Breaker,
    /// Opens fresh connections for the probe while the breaker is open: a pool that still holds
    /// a few live connections says nothing about whether the server takes new ones.
    connector: Connector,
    /// The metrics to report to, once the application has them.
    metrics: OnceLock<Arc<Metrics>>,
}

impl Health {
    fn failed(&self, failing: &Failing, error: &str) {
        if let Some(metrics) = self.metrics.get() {
            metrics.store_errors.inc();
        }
        if self.breaker.failed() {
            if let Some(metrics) = self.metrics.get() {
                metrics.store_breaker_open.set(1);
            }
            // The connection error names the cause; a checkout timeout names none.
            let why = failing.why();
            let cause = if why.is_empty() { one_line(error) } else { why };
            tracing::warn!(error = %cause, "the store is down; answering without it");
        }
    }

    fn succeeded(&self) {
        if self.breaker.succeeded() {
            if let Some(metrics) = self.metrics.get() {
                metrics.store_breaker_open.set(0);
            }
            tracing::info!("the store is back");
        }
    }
}

/// The shared handle to the store: a pool, cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: DbPool,
    is_postgres: bool,
    failing: Arc<Failing>,
    health: Arc<Health>,
}

impl Store {
    /// Connects (creating the SQLite file and its directory if needed) and checks one connection.
    pub fn connect(url: &DatabaseUrl, pool_size: u32) -> Result<Self, StoreError> {
        Self::connect_pool(url, pool_size, 1)
    }

    /// For one-shot commands (`migrate`, `bootstrap`, ...): keeps no idle connection, so the
    /// pool opens none in the background while the process exits (libpq crashes when a
    /// connection is being established during exit).
    pub fn connect_for_command(url: &DatabaseUrl) -> Result<Self, StoreError> {
        Self::connect_pool(url, 2, 0)
    }

    fn connect_pool(url: &DatabaseUrl, pool_size: u32, min_idle: u32) -> Result<Self, StoreError> {
        let (conn_url, is_postgres, size) = match url {
            DatabaseUrl::Postgres(url) => (url.clone(), true, pool_size),
            DatabaseUrl::Sqlite(path) => {
                prepare_sqlite_file(path)?;
                // WAL lets readers run beside the single writer; more connections only queue.
                (path.to_string_lossy().into_owned(), false, pool_size.min(8))
            }
        };
        let manager = Connector {
            url: conn_url,
            postgres: is_postgres,
        };
        let failing = Arc::new(Failing::default());
        let health = Arc::new(Health {
            breaker: Breaker::new(BREAKER_OPEN, CHECKOUT_TIMEOUT * 2),
            connector: manager.clone(),
            metrics: OnceLock::new(),
        });
        let pool = Pool::builder()
            .max_size(size)
            .min_idle(Some(min_idle))
            .connection_timeout(POOL_CONNECTION_TIMEOUT)
            .connection_customizer(Box::new(ConnectionSetup(failing.clone())))
            // Connection errors surface as `StoreError::Unavailable` where they matter; the
            // handler only records them (the breaker logs when the store goes and comes back).
            .error_handler(Box::new(ConnectionErrors(failing.clone())))
            .build(manager);
        let unavailable = |e: r2d2::Error| {
            StoreError::Unavailable(one_line(&format!(
                "cannot connect to {}: {e}",
                url.redacted()
            )))
        };
        let pool = pool.map_err(unavailable)?;
        if min_idle == 0 {
            // The pool opened nothing yet: check one connection now, as `build` does otherwise.
            drop(pool.get().map_err(unavailable)?);
        }
        Ok(Self {
            pool,
            is_postgres,
            failing,
            health,
        })
    }

    pub fn is_postgres(&self) -> bool {
        self.is_postgres
    }

    /// Counts store errors and shows the breaker in `metrics` from now on.
    pub fn report_to(&self, metrics: Arc<Metrics>) {
        let open = i64::from(!self.health.breaker.is_closed());
        metrics.store_breaker_open.set(open);
        let _ = self.health.metrics.set(metrics);
    }

    /// The breaker is closed: the store answered the last request or probe.
    pub fn is_healthy(&self) -> bool {
        self.health.breaker.is_closed()
    }

    /// A connection from the pool, for blocking code (CLI, migrations, inside `run`): at once
    /// [`StoreError::Down`] while the breaker is open.
    pub fn conn(&self) -> Result<PooledDb, StoreError> {
        let admitted = self.health.breaker.admit().ok_or(StoreError::Down)?;
        let conn = self.checkout()?;
        if admitted == Admitted::Probe {
            self.health.succeeded();
        }
        Ok(conn)
    }

    /// A checkout whatever the breaker says, that tells it when it fails.
    /// Waits up to [`CHECKOUT_TIMEOUT`] for a busy pool, but gives up within
    /// [`FAILING_CHECKOUT_TIMEOUT`] once connecting fails (even if it started failing during this
    /// wait), so callers fail fast instead of queueing behind a dead store.
    fn checkout(&self) -> Result<PooledDb, StoreError> {
        let deadline = std::time::Instant::now() + CHECKOUT_TIMEOUT;
        loop {
            let slice = deadline
                .saturating_duration_since(std::time::Instant::now())
                .min(FAILING_CHECKOUT_TIMEOUT);
            match self.pool.get_timeout(slice) {
                Ok(conn) => return Ok(conn),
                Err(err) if self.failing.get() || slice < FAILING_CHECKOUT_TIMEOUT => {
                    let error = one_line(&err.to_string());
                    self.health.failed(&self.failing, &error);
                    return Err(StoreError::Unavailable(error));
                }
                Err(_) => {}
            }
        }
    }

    /// Runs blocking store work on the blocking thread pool so request handlers never block.
    /// While the breaker is open it answers [`StoreError::Down`] at once, without a thread.
    pub async fn run<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let admitted = self.health.breaker.admit().ok_or(StoreError::Down)?;
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = store.checkout()?;
            let done = work(&mut conn);
            // A query's own error (a conflict, a constraint) says nothing about the store; one
            // after which the connection cannot answer `SELECT 1` does.
            let lost = done.is_err().then(|| answers(&mut conn).err()).flatten();
            match lost {
                Some(lost) => store.health.failed(&store.failing, &lost),
                None if admitted == Admitted::Probe => store.health.succeeded(),
                None => {}
            }
            done
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
        self.run(move |conn| write_transaction(conn, work)).await
    }

    /// Checks that the store answers (through the breaker: while it is open, `Down` at once).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run(|conn| answers(conn).map_err(StoreError::Unavailable))
            .await
    }

    /// Checks every [`PROBE_EVERY`] that the store answers, whatever the breaker says, so that
    /// an idle node notices an outage and a node whose breaker is open notices the store is
    /// back; no request waits on it. While the breaker is closed the probe borrows a pooled
    /// connection; while it is open it opens a new one, since that is what a down store refuses.
    pub async fn run_heartbeat(self) {
        loop {
            tokio::time::sleep(PROBE_EVERY).await;
            let store = self.clone();
            if let Err(err) = tokio::task::spawn_blocking(move || store.probe()).await {
                tracing::warn!(error = %err, "the store probe did not finish");
            }
        }
    }

    /// One dedicated attempt, whatever the breaker says, that tells the breaker how it went: a
    /// connection (pooled or new) that answers `SELECT 1`.
    fn probe(&self) {
        let answered = if self.health.breaker.is_closed() {
            // A failed checkout has told the breaker already.
            let Ok(mut conn) = self.checkout() else {
                return;
            };
            answers(&mut conn)
        } else {
            use diesel::r2d2::ManageConnection;
            let answered = self
                .health
                .connector
                .connect()
                .map_err(|e| one_line(&e.to_string()))
                .and_then(|mut conn| answers(&mut conn));
            if answered.is_ok() {
                // Connecting works again: checkouts may wait for the pool's own reconnection.
                self.failing.set(false, String::new);
            }
            answered
        };
        match answered {
            Ok(()) => self.health.succeeded(),
            Err(error) => self.health.failed(&self.failing, &error),
        }
    }

    /// Applies pending migrations; on PostgreSQL under an advisory lock so nodes starting
    /// together do not race.
    pub fn migrate(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn()?;
        run_migrations(&mut conn)
    }
}

/// Whether a connection still answers, and if not why (on one line).
fn answers(conn: &mut DbConnection) -> Result<(), String> {
    diesel::sql_query("SELECT 1")
        .execute(conn)
        .map(drop)
        .map_err(|e| one_line(&e.to_string()))
}

/// One transaction that may read and then write: all of it is written or none of it.
///
/// On SQLite it takes the write lock up front (`BEGIN IMMEDIATE`). A deferred transaction that
/// reads and then writes fails at once with "database is locked" when another connection wrote
/// in between (the busy timeout cannot help it); an immediate one waits its turn.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    if let DbConnection::Postgres(_) = conn {
        return conn.transaction(work);
    }
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    type Manager = <DbConnection as Connection>::TransactionManager;
    if let DbConnection::Sqlite(sqlite) = conn {
        AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?;
    }
    match work(conn) {
        Ok(value) => {
            Manager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(err) => {
            Manager::rollback_transaction(conn)?;
            Err(err)
        }
    }
}

/// Creates the database file's directory (0700) and the file itself (0600) if they are missing,
/// before SQLite opens it: SQLite gives the `-wal` and `-shm` files the database file's mode.
/// Files and directories that already exist keep theirs.
fn prepare_sqlite_file(path: &Path) -> Result<(), StoreError> {
    let dir = url::data_dir_of(path);
    create_private_dir(&dir).map_err(|e| {
        StoreError::Unavailable(format!("cannot create directory {}: {e}", dir.display()))
    })?;
    match create_private_file(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Unavailable(format!(
            "cannot create {}: {e}",
            path.display()
        ))),
    }
}

/// Creates a new file readable by the owner only (0600 on Unix); fails if it exists.
pub fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Creates `dir` and any missing parents, readable by the owner only (0700 on Unix): it holds
/// the database and the generated `secret.key`.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
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

/// Applies the next pending migration, if any, and names it (the migration test walks them one
/// by one). No advisory lock: not for a running cluster.
pub fn run_next_migration(conn: &mut DbConnection) -> Result<Option<String>, StoreError> {
    let next = match conn {
        DbConnection::Postgres(pg) => pg.pending_migrations(POSTGRES_MIGRATIONS).and_then(|p| {
            p.first()
                .map(|m| pg.run_migration(&**m).map(|v| v.to_string()))
                .transpose()
        }),
        DbConnection::Sqlite(sqlite) => {
            sqlite.pending_migrations(SQLITE_MIGRATIONS).and_then(|p| {
                p.first()
                    .map(|m| sqlite.run_migration(&**m).map(|v| v.to_string()))
                    .transpose()
            })
        }
    };
    next.map_err(|e| StoreError::Migration(e.to_string()))
}

/// Reverts the last applied migration and names it.
pub fn revert_last_migration(conn: &mut DbConnection) -> Result<String, StoreError> {
    let reverted = match conn {
        DbConnection::Postgres(pg) => pg
            .revert_last_migration(POSTGRES_MIGRATIONS)
            .map(|v| v.to_string()),
        DbConnection::Sqlite(sqlite) => sqlite
            .revert_last_migration(SQLITE_MIGRATIONS)
            .map(|v| v.to_string()),
    };
    reverted.map_err(|e| StoreError::Migration(e.to_string()))
}

/// Reverts every applied migration (used by the migration round-trip test).
pub fn revert_all_migrations(conn: &mut DbConnection) -> Result<(), StoreError> {
    let result = match conn {
        DbConnection::Postgres(pg) => pg.revert_all_migrations(POSTGRES_MIGRATIONS).map(drop),
        DbConnection::Sqlite(sqlite) => sqlite.revert_all_migrations(SQLITE_MIGRATIONS).map(drop),
    };
    result.map_err(|e| StoreError::Migration(e.to_string()))
}

/// `sql` with each `:name` (bound in the order of `names`) as the backend's numbered parameter.
pub(crate) fn numbered(conn: &DbConnection, sql: &str, names: &[&str]) -> String {
    let mut sql = sql.to_owned();
    for (i, name) in names.iter().enumerate() {
        let parameter = match conn {
            DbConnection::Postgres(_) => format!("${}", i + 1),
            DbConnection::Sqlite(_) => format!("?{}", i + 1),
        };
        sql = sql.replace(&format!(":{name}"), &parameter);
    }
    sql
}

/// The system's UTC time at the precision both backends store (microseconds). Code that an
/// app's [`Clock`](crate::domain::time::Clock) governs reads that instead.
pub fn now() -> chrono::NaiveDateTime {
    crate::domain::time::system_now()
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    /// A transaction that reads, then writes while another connection wrote in between, still
    /// commits: on SQLite it holds the write lock from the start, so the other writer waits.
    #[test]
    fn a_write_transaction_that_reads_first_survives_a_concurrent_writer() {
        let dir = tempfile::tempdir().unwrap();
        let url = DatabaseUrl::Sqlite(dir.path().join("t.db"));
        let store = Store::connect(&url, 2).unwrap();
        store.migrate().unwrap();
        let other = store.clone();
        let mut conn = store.conn().unwrap();
        let committed = write_transaction(&mut conn, |conn| {
            tenants::named(conn, "first")?;
            // Another connection writes now; with a deferred transaction it would commit first
            // and make this one's write fail at once with "database is locked".
            let (done, finished) = mpsc::channel();
            let (ready, started) = mpsc::channel();
            std::thread::spawn(move || {
                let mut conn = other.conn().unwrap();
                let _ = ready.send(());
                let _ = done.send(insert_tenant(&mut conn, "second"));
            });
            // Once the writer holds its connection, its insert takes milliseconds unless it waits.
            started.recv_timeout(Duration::from_secs(10)).unwrap();
            let early = finished.recv_timeout(Duration::from_millis(300)).ok();
            insert_tenant(conn, "first")?;
            Ok::<_, StoreError>((early, finished))
        });
        let (early, finished) = committed.expect("the reading transaction commits");
        assert!(early.is_none(), "the other writer did not wait: {early:?}");
        let late = finished.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(
            late.is_ok(),
            "the other writer went on after the commit: {late:?}"
        );
    }

    /// A query's own error leaves the breaker closed; while it is open, store access answers
    /// `Down` at once; the probe closes it as soon as a new connection answers.
    #[tokio::test]
    async fn only_a_lost_connection_opens_the_breaker_and_the_probe_closes_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&DatabaseUrl::Sqlite(dir.path().join("b.db")), 2).unwrap();
        store.migrate().unwrap();
        let twice = |id: &'static str| {
            move |conn: &mut DbConnection| {
                insert_tenant_with_id(conn, id)?;
                insert_tenant_with_id(conn, id)
            }
        };
        let conflict = store
            .transaction(twice("01a209c6-68e8-722e-ac6b-8f7896752075"))
            .await;
        assert!(conflict.is_err_and(|e| e.is_unique_violation()));
        assert!(store.is_healthy(), "a unique violation is no outage");

        assert!(store.health.breaker.failed());
        let started = std::time::Instant::now();
        let down = store.ping().await;
        assert!(matches!(down, Err(StoreError::Down)), "{down:?}");
        assert!(matches!(store.conn(), Err(StoreError::Down)));
        assert!(started.elapsed() < Duration::from_millis(50));
        assert!(!store.is_healthy());

        probe(&store).await;
        assert!(store.is_healthy(), "the probe found the store answering");
        store.ping().await.unwrap();
    }

    async fn probe(store: &Store) {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.probe())
            .await
            .unwrap();
    }

    /// The pool still holds working connections, but a new one cannot be opened (on SQLite: the
    /// file's path now names a directory): the probe keeps the breaker open until one can.
    #[tokio::test]
    async fn the_probe_of_an_open_breaker_needs_a_new_connection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        let store = Store::connect(&DatabaseUrl::Sqlite(path.clone()), 2).unwrap();
        store.migrate().unwrap();
        let pooled = store.checkout().unwrap();
        std::fs::rename(&path, dir.path().join("moved.db")).unwrap();
        std::fs::create_dir(&path).unwrap();
        store.health.breaker.failed();

        probe(&store).await;
        assert!(!store.is_healthy(), "closed by a pooled connection");
        drop(pooled);
        assert!(store.checkout().is_ok(), "the pool itself still works");
        probe(&store).await;
        assert!(!store.is_healthy());

        std::fs::remove_dir(&path).unwrap();
        std::fs::rename(dir.path().join("moved.db"), &path).unwrap();
        probe(&store).await;
        assert!(store.is_healthy(), "a new connection answers again");
    }

    fn insert_tenant(conn: &mut DbConnection, name: &str) -> Result<(), StoreError> {
        insert_tenant_as(conn, &crate::domain::ids::new_id(), name)
    }

    /// Inserting one id twice is a unique violation (names may repeat).
    fn insert_tenant_with_id(conn: &mut DbConnection, id: &str) -> Result<(), StoreError> {
        insert_tenant_as(conn, id, "acme")
    }

    fn insert_tenant_as(conn: &mut DbConnection, id: &str, name: &str) -> Result<(), StoreError> {
        tenants::insert(
            conn,
            &models::Tenant {
                id: id.to_owned(),
                name: name.to_owned(),
                created_at: now(),
            },
        )
    }
}
