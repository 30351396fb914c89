//! What a test sets up, in one vocabulary for the in-process app, processes and clusters alike:
//! a [`Deployment`] (an API and the store behind it) makes tenants and keyspaces, a [`KeySpec`]
//! says what key to make, and a [`World`] chains them:
//!
//! ```ignore
//! let world = TestApp::spawn().await.with_space("acme").await.with_key(|k| k.credits(10)).await;
//! ```

use std::ops::Deref;

use latchkey::domain::key::KeyHasher;
use latchkey::store::Store;
use serde_json::{Map, Value, json};

use super::{Api, TEST_SECRET_KEY, TestDatabase, store_of};

/// A tenant made by `latchkey::bootstrap`, with its all-scopes root key.
#[derive(Clone, Debug)]
pub struct TestTenant {
    pub id: String,
    pub name: String,
    pub root_key: String,
    pub root_key_id: String,
}

/// A keyspace and the tenant it belongs to.
#[derive(Clone, Debug)]
pub struct TestSpace {
    pub tenant: TestTenant,
    pub keyspace_id: String,
    pub prefix: String,
}

impl TestSpace {
    /// The tenant's all-scopes root key.
    pub fn token(&self) -> &str {
        &self.tenant.root_key
    }
}

/// A key as created: its id, its plaintext (shown once) and the whole 201 body (`key["name"]`).
#[derive(Clone, Debug)]
pub struct TestKey {
    pub id: String,
    pub key: String,
    pub created: Value,
}

impl TestKey {
    pub fn created(created: Value) -> Self {
        Self {
            id: created["id"].as_str().expect("key id").to_owned(),
            key: created["key"].as_str().expect("plaintext key").to_owned(),
            created,
        }
    }

    /// Client credentials that belong to no created key (a wrong secret, an unknown id).
    pub fn credentials(id: &str, key: &str) -> Self {
        Self {
            id: id.to_owned(),
            key: key.to_owned(),
            created: Value::Null,
        }
    }
}

impl std::ops::Index<&str> for TestKey {
    type Output = Value;
    fn index(&self, field: &str) -> &Value {
        &self.created[field]
    }
}

/// The body of a key's create request, field by field; what it leaves out the keyspace's
/// defaults decide.
#[derive(Clone, Debug, Default)]
pub struct KeySpec(Map<String, Value>);

impl KeySpec {
    /// Any field, as given (also for values the API must refuse).
    pub fn set(mut self, field: &str, value: Value) -> Self {
        self.0.insert(field.to_owned(), value);
        self
    }

    pub fn name(self, name: &str) -> Self {
        self.set("name", json!(name))
    }

    pub fn owner(self, owner_id: &str) -> Self {
        self.set("owner_id", json!(owner_id))
    }

    pub fn scopes<'a>(self, scopes: impl IntoIterator<Item = &'a str>) -> Self {
        self.set("scopes", json!(scopes.into_iter().collect::<Vec<_>>()))
    }

    pub fn meta(self, meta: Value) -> Self {
        self.set("meta", meta)
    }

    /// At most `limit` verifications per `window_seconds`.
    pub fn ratelimit(self, limit: u32, window_seconds: u32) -> Self {
        self.set(
            "ratelimit",
            json!({"limit": limit, "window_seconds": window_seconds}),
        )
    }

    pub fn credits(self, remaining: i64) -> Self {
        self.set("credits", json!({"remaining": remaining}))
    }

    /// Credits of `remaining` that refill to `amount` every `interval` (`daily`, `monthly`).
    pub fn refilled_credits(self, remaining: i64, amount: i64, interval: &str) -> Self {
        let refill = json!({"amount": amount, "interval": interval});
        self.set("credits", json!({"remaining": remaining, "refill": refill}))
    }

    /// Expires `seconds` after its creation (`ttl_seconds`).
    pub fn expires_in(self, seconds: u64) -> Self {
        self.set("ttl_seconds", json!(seconds))
    }

    pub fn ip_allowlist<'a>(self, cidrs: impl IntoIterator<Item = &'a str>) -> Self {
        self.set("ip_allowlist", json!(cidrs.into_iter().collect::<Vec<_>>()))
    }

    pub fn enabled(self, enabled: bool) -> Self {
        self.set("enabled", json!(enabled))
    }

    /// The create request for a key in `keyspace_id`.
    pub fn body(self, keyspace_id: &str) -> Value {
        let mut body = self.0;
        body.insert("keyspace_id".into(), json!(keyspace_id));
        Value::Object(body)
    }
}

/// A REST API and the store behind it: tenants are bootstrapped straight into the store (as the
/// `bootstrap` command does), everything else goes through the API.
#[derive(Clone)]
pub struct Deployment {
    pub api: Api,
    pub store: Store,
    pub hasher: KeyHasher,
}

impl Deref for Deployment {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Deployment {
    /// The API at `api` over `db` (every node shares [`TEST_SECRET_KEY`]).
    pub fn over(api: &Api, db: &TestDatabase) -> Self {
        let hasher =
            latchkey::config::Settings::load(&[("LATCHKEY_SECRET_KEY", TEST_SECRET_KEY)], None)
                .expect("settings")
                .key_hasher()
                .expect("hasher");
        Self {
            api: api.clone(),
            store: store_of(db),
            hasher,
        }
    }

    /// Creates a tenant with an owner (`owner@{name}.example.com`) and an all-scopes root key.
    pub async fn tenant(&self, name: &str) -> TestTenant {
        let (store, hasher, name) = (self.store.clone(), self.hasher.clone(), name.to_owned());
        tokio::task::spawn_blocking(move || {
            let done = latchkey::bootstrap::bootstrap(
                &store,
                &hasher,
                &name,
                &format!("owner@{name}.example.com"),
                Some(super::PASSWORD.into()),
            )
            .expect("bootstrap");
            TestTenant {
                id: done.tenant_id.to_string(),
                name,
                root_key: done.root_key.expose_secret().to_owned(),
                root_key_id: done.root_key_id.to_string(),
            }
        })
        .await
        .expect("bootstrap task")
    }

    /// A new tenant `name` with one keyspace whose prefix is `{name}_live`.
    pub async fn space(&self, name: &str) -> TestSpace {
        let tenant = self.tenant(name).await;
        self.api.keyspace(&tenant, &format!("{name}_live")).await
    }
}

/// An app (a [`TestApp`](super::TestApp) or a cluster) with what a test set up in it: a tenant,
/// its keyspaces and keys, newest last. Made by `app.with_tenant(..)` or `app.with_space(..)`.
pub struct World<A = super::TestApp> {
    pub app: A,
    pub tenant: TestTenant,
    pub spaces: Vec<TestSpace>,
    pub keys: Vec<TestKey>,
}

impl<A: Deref<Target = Deployment>> World<A> {
    pub async fn new(app: A, tenant: &str) -> Self {
        let tenant = app.tenant(tenant).await;
        Self {
            app,
            tenant,
            spaces: Vec::new(),
            keys: Vec::new(),
        }
    }

    /// Adds a keyspace with `prefix`; later keys go into it.
    pub async fn with_keyspace(mut self, prefix: &str) -> Self {
        let space = self.app.keyspace(&self.tenant, prefix).await;
        self.spaces.push(space);
        self
    }

    /// Adds a key to the newest keyspace, as `spec` describes it (`|k| k` for the defaults).
    pub async fn with_key(mut self, spec: impl FnOnce(KeySpec) -> KeySpec) -> Self {
        let key = self.create_key(spec).await;
        self.keys.push(key);
        self
    }

    /// The tenant's all-scopes root key.
    pub fn token(&self) -> &str {
        &self.tenant.root_key
    }

    /// The newest keyspace.
    pub fn space(&self) -> &TestSpace {
        self.spaces
            .last()
            .expect("a keyspace: call .with_keyspace(..) first")
    }

    /// The newest key.
    pub fn key(&self) -> &TestKey {
        self.keys.last().expect("a key: call .with_key(..) first")
    }

    /// Another key in the newest keyspace.
    pub async fn create_key(&self, spec: impl FnOnce(KeySpec) -> KeySpec) -> TestKey {
        self.app.create_key(self.space(), spec).await
    }

    /// Verifies `key` with the tenant's root key; `extra` adds fields to the request.
    pub async fn verify(&self, key: &str, extra: Value) -> Value {
        let mut body = json!({"key": key});
        super::merge(&mut body, extra);
        self.app.verify_with(self.token(), body).await
    }

    pub async fn verify_code(&self, key: &str) -> String {
        self.app.verify_code(self.token(), key).await
    }

    /// A GET with the tenant's root key that must answer 200 with JSON.
    pub async fn get_ok(&self, path: &str) -> Value {
        self.app.get_ok(path, self.token()).await
    }

    /// A POST with the tenant's root key.
    pub async fn post_json(&self, path: &str, body: Value) -> reqwest::Response {
        self.app.post_json(path, self.token(), &body).await
    }
}
