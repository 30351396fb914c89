//! Building the application (connect, migrate, bind) separately from running it, so tests can
//! spawn the real thing on port 0.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use tracing_actix_web::TracingLogger;

use crate::auth::leak_signature::LeakReporters;
use crate::auth::root_key::RootKeyAuthenticator;
use crate::auth::session::SessionKeys;
use crate::auth::throttle::Throttle;
use crate::cache::Caches;
use crate::config::Settings;
use crate::domain::time::Clock;
use crate::events::delivery::Deliverer;
use crate::events::{CacheEviction, Dispatcher, WebhookNudge};
use crate::metrics::Metrics;
use crate::redis::RedisTier;
use crate::routes::dashboard::Dashboard;
use crate::routes::dashboard::reveal::Reveals;
use crate::routes::drain::{self, DRAIN_LIMIT, Drain};
use crate::routes::input::{self, json_config, query_config};
use crate::routes::request_log;
use crate::routes::state::AppState;
use crate::store::Store;
use crate::tokens::TokenService;
use crate::tokens::denylist::Denylist;
use crate::tokens::signing::{KeyCipher, Keyring};
use crate::verify::ratelimit::RateLimiter;
use crate::verify::usage::UsageRecorder;
use crate::verify::{Collaborators, Verifier};

pub struct Application {
    port: u16,
    server: Server,
    /// The listening socket actix serves (a second handle on it), closed first at shutdown.
    listener: TcpListener,
    drain: Arc<Drain>,
    shutdown_delay: Duration,
    usage: Arc<UsageRecorder>,
    store: Store,
    background: Vec<tokio::task::JoinHandle<()>>,
}

/// How often counted usage is written to the store.
const USAGE_FLUSH_INTERVAL: Duration = Duration::from_secs(5);

async fn flush_usage_periodically(usage: Arc<UsageRecorder>, store: Store) {
    let mut ticker = tokio::time::interval(USAGE_FLUSH_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        // While the store is down the counts wait in memory (the breaker logged the outage).
        if !store.is_healthy() {
            continue;
        }
        if let Err(err) = usage.flush(&store).await {
            tracing::warn!(error = %err, "usage flush failed; will retry");
        }
    }
}

/// How often each node runs the retention purge (nodes running it at once share the work).
const RETENTION_PURGE_INTERVAL: Duration = Duration::from_secs(3600);

async fn purge_periodically(store: Store, clock: Clock, retention_days: u32) {
    let mut ticker = tokio::time::interval(RETENTION_PURGE_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if !store.is_healthy() {
            continue;
        }
        let purge = crate::manage::retention::purge(
            &store,
            clock.now(),
            retention_days,
            crate::manage::retention::PURGE_BATCH,
        );
        match purge.await {
            Ok(purged) if purged != Default::default() => {
                tracing::info!(
                    ?purged,
                    retention_days,
                    "purged audit events and usage past retention"
                );
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "retention purge failed; will retry"),
        }
    }
}

impl Application {
    /// Connects to the store, applies migrations and binds the listener (port 0 picks a free port).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Clock::system()).await
    }

    /// [`Application::build`] with the clock that verification, tokens, signing keys and key
    /// views read; tests move it instead of waiting.
    pub async fn build_with_clock(settings: Settings, clock: Clock) -> anyhow::Result<Self> {
        let (current_secrets, previous_secrets) = settings.derived_secrets()?;
        let keys = crate::domain::key::KeyHasher::new(&current_secrets, &previous_secrets);
        let leak_reporters = match &settings.leak_reporter_keys {
            Some(path) => LeakReporters::load(path)?,
            None => LeakReporters::default(),
        };

        let store = open_store(&settings).await?;
        tracing::info!(
            database = %settings.database.redacted(),
            "store ready"
        );

        let listener = TcpListener::bind(settings.bind)
            .with_context(|| format!("cannot listen on {}", settings.bind))?;
        let port = listener.local_addr()?.port();
        let metrics = Arc::new(Metrics::new());
        store.report_to(metrics.clone());
        let redis = match &settings.redis_url {
            Some(url) => Some(
                RedisTier::new(
                    url,
                    Duration::from_millis(settings.redis_timeout_ms),
                    metrics.clone(),
                )
                .with_context(|| "REDIS_URL is not a usable Redis URL".to_owned())?,
            ),
            None => None,
        };
        // The default public URL names the bind address: with port 0, the port just bound.
        let public_url = bound_public_url(&settings.public_url, port);
        let dashboard = web::Data::new(Dashboard::new(
            SessionKeys::new(&current_secrets),
            Reveals::new(current_secrets.reveal.clone()),
            &public_url,
            redis.clone(),
        ));
        let caches = Arc::new(Caches::new(
            redis.clone(),
            metrics.clone(),
            Duration::from_secs(settings.stale_seconds),
        ));
        let usage = Arc::new(UsageRecorder::default());
        let keyring = Keyring::new(
            store.clone(),
            KeyCipher::new(&current_secrets, &previous_secrets),
            settings.signing_algorithm,
            settings.token_ttl_seconds,
            clock.clone(),
        );
        let denylist = Arc::new(Denylist::new(store.clone(), redis.clone(), clock.clone()));
        let tokens = Arc::new(TokenService::new(
            store.clone(),
            public_url.clone(),
            settings.token_ttl_seconds,
            keyring,
            denylist.clone(),
            clock.clone(),
        ));
        let root_keys = RootKeyAuthenticator::new(
            store.clone(),
            keys.clone(),
            caches.root_keys.clone(),
            clock.clone(),
        );
        let verifier = Verifier::new(Collaborators {
            store: store.clone(),
            hasher: keys.clone(),
            keys: caches.keys.clone(),
            tokens: tokens.clone(),
            ratelimiter: RateLimiter::new(redis.clone()),
            usage: usage.clone(),
            metrics: metrics.clone(),
            clock: clock.clone(),
        });
        let wake = Arc::new(tokio::sync::Notify::new());
        let deliverer = Arc::new(Deliverer::new(
            store.clone(),
            KeyCipher::new(&current_secrets, &previous_secrets),
            clock.clone(),
            settings.webhook_policy,
            Duration::from_secs(settings.webhook_claim_seconds),
            wake.clone(),
        )?);
        let https = public_url.starts_with("https://");
        let error_page = web::Data::new(crate::routes::semantics::ErrorPage::new(&public_url));
        let state = web::Data::new(AppState {
            store: store.clone(),
            caches: caches.clone(),
            keys,
            public_url,
            management_throttle: Throttle::per_minute(settings.management_rate_limit_per_minute),
            events: Dispatcher::new(vec![
                Arc::new(CacheEviction::new(caches.clone())),
                Arc::new(WebhookNudge(wake)),
            ]),
            root_keys,
            verifier,
            clock: clock.clone(),
            metrics,
            tokens,
            leak_reporters,
            trusted_proxies: settings.trusted_proxies.clone(),
            metrics_token: settings.metrics_token.clone(),
            webhook_cipher: KeyCipher::new(&current_secrets, &previous_secrets),
            webhook_policy: settings.webhook_policy,
        });
        let mut background = vec![
            tokio::spawn(caches.clone().run_subscriber()),
            tokio::spawn(caches.clone().run_retries()),
            tokio::spawn(flush_usage_periodically(usage.clone(), store.clone())),
            tokio::spawn(denylist.run()),
            tokio::spawn(store.clone().run_heartbeat()),
            tokio::spawn(deliverer.run()),
            tokio::spawn(purge_periodically(
                store.clone(),
                clock,
                settings.audit_retention_days,
            )),
        ];
        if let Some(redis) = redis.clone() {
            background.push(tokio::spawn(redis.run_heartbeat()));
        }
        let max_body = settings.max_body_bytes;
        let drain = Drain::new();
        let (drain_data, connections) = (web::Data::from(drain.clone()), drain.clone());
        let served_listener = listener.try_clone()?;

        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(error_page.clone())
                .app_data(dashboard.clone())
                .app_data(drain_data.clone())
                .app_data(json_config(max_body))
                .app_data(web::PayloadConfig::new(max_body))
                .app_data(query_config())
                .configure(crate::routes::configure)
                .default_service(web::to(crate::routes::not_found))
                .wrap(from_fn(input::body_errors))
                .wrap(from_fn(crate::routes::semantics::answer))
                .wrap(default_headers(https))
                .wrap(from_fn(crate::routes::request_metrics::observe))
                .wrap(from_fn(request_log::request_id))
                .wrap(TracingLogger::<request_log::SafeRootSpan>::new())
                .wrap(from_fn(drain::close_while_draining))
        })
        // The connection's data lives as long as the connection: its guard counts it open.
        .on_connect(move |_, data| {
            data.insert(connections.track());
        })
        .workers(settings.workers)
        .listen(served_listener)?
        // Signals are handled in `run_until_stopped`, which drains before stopping actix.
        .disable_signals()
        .shutdown_timeout(1)
        .run();
        tracing::info!(
            address = %settings.bind.ip(),
            port,
            redis = redis.is_some(),
            "latchkey listening"
        );
        Ok(Self {
            port,
            server,
            listener,
            drain,
            shutdown_delay: Duration::from_secs(settings.shutdown_delay_seconds),
            usage,
            store,
            background,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM or SIGINT, then drains (see [`drain`]): after the configured delay it
    /// stops listening, answers what arrives on open connections with `Connection: close`,
    /// stops once they are closed, and writes the usage counted since the last flush. A second
    /// signal while draining stops at once.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Self {
            server,
            listener,
            drain,
            shutdown_delay,
            usage,
            store,
            background,
            ..
        } = self;
        let handle = server.handle();
        let mut serving = tokio::spawn(server);
        let mut signals = Signals::new()?;
        let served = tokio::select! {
            served = &mut serving => served,
            name = signals.next() => {
                tracing::info!(signal = name, "shutting down: draining connections");
                drain.begin();
                let drained = async {
                    if !shutdown_delay.is_zero() {
                        tokio::time::sleep(shutdown_delay).await;
                    }
                    stop_listening(&listener);
                    // No more accept calls on the closed socket (each would fail and be retried).
                    handle.pause().await;
                    drain.close_connections();
                    drain.until_closed(DRAIN_LIMIT).await
                };
                let started = std::time::Instant::now();
                tokio::select! {
                    all_closed = drained => if all_closed {
                        tracing::info!(
                            after_ms = started.elapsed().as_millis() as u64,
                            "drained: every connection is closed"
                        );
                    } else {
                        tracing::warn!(
                            open = drain.open_connections(),
                            "connections still open after the drain limit; closing them"
                        );
                    },
                    name = signals.next() => {
                        tracing::warn!(signal = name, "second signal: stopping without draining");
                    }
                }
                handle.stop(true).await;
                serving.await
            }
        };
        for task in &background {
            task.abort();
        }
        match usage.flush(&store).await {
            Ok(rows) => tracing::info!(rows, "flushed usage at shutdown"),
            Err(err) => tracing::error!(error = %err, "could not flush usage at shutdown"),
        }
        served.map_err(std::io::Error::other)?
    }
}

/// SIGTERM (from an orchestrator) and SIGINT (Ctrl-C) both begin a graceful shutdown.
struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// The next signal's name.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}

/// Stops accepting connections: new ones are refused at once (the client can go to another
/// node, having sent nothing), while open ones are served on. `shutdown` acts on the socket that
/// actix also holds, unlike dropping our handle on it.
fn stop_listening(listener: &TcpListener) {
    crate::telemetry::listener_closed();
    if let Err(err) = socket2::SockRef::from(listener).shutdown(std::net::Shutdown::Read) {
        tracing::warn!(error = %err, "could not close the listening socket");
    }
}

/// Headers on every answer that does not set its own. Served over HTTPS (by the balancer in
/// front), browsers are told to use nothing else for a year.
fn default_headers(https: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "no-referrer"));
    if https {
        headers.add(("Strict-Transport-Security", "max-age=31536000"))
    } else {
        headers
    }
}

/// The default public URL names the bind address; with port 0 it names the port picked.
fn bound_public_url(public_url: &str, port: u16) -> String {
    match public_url.strip_suffix(":0") {
        Some(base) => format!("{base}:{port}"),
        None => public_url.to_owned(),
    }
}

/// Connects and migrates; blocking work kept off the async runtime.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    open(settings, false).await
}

/// Like [`open_store`], for a command that exits when done (see [`Store::connect_for_command`]).
pub async fn open_command_store(settings: &Settings) -> anyhow::Result<Store> {
    open(settings, true).await
}

async fn open(settings: &Settings, one_shot: bool) -> anyhow::Result<Store> {
    let url = settings.database.clone();
    let pool_size = settings.db_pool_size;
    let store = tokio::task::spawn_blocking(move || -> anyhow::Result<Store> {
        let store = if one_shot {
            Store::connect_for_command(&url)?
        } else {
            Store::connect(&url, pool_size)?
        };
        let applied = store.migrate()?;
        if !applied.is_empty() {
            tracing::info!(migrations = ?applied, "applied migrations");
        }
        Ok(store)
    })
    .await
    .context("store setup task failed")??;
    Ok(store)
}
