//! A browser without a browser: an HTTP client that keeps cookies, reads CSRF tokens out of
//! pages and submits forms, plus shortcuts to make members with a given role.
#![allow(dead_code)] // each test module uses a different subset

use std::sync::OnceLock;

use diesel::prelude::*;
use latchkey::auth::password::{self, Password};
use latchkey::store::models::Membership;
use latchkey::store::{memberships, now, schema, users};

pub use crate::helpers::PASSWORD;
use crate::helpers::TestApp;

/// One person's browser session against a test app.
pub struct Visitor {
    pub client: reqwest::Client,
    pub base: String,
}

impl Visitor {
    pub fn new(app: &TestApp) -> Self {
        Self::at(&app.address)
    }

    /// A visitor of the server at `base` (a node started as a process).
    pub fn at(base: &str) -> Self {
        Self::with_headers(base, reqwest::header::HeaderMap::new())
    }

    /// A visitor behind a load balancer that names it as `address` in `X-Forwarded-For`.
    pub fn forwarded_for(app: &TestApp, address: &str) -> Self {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-forwarded-for", address.parse().expect("header value"));
        Self::with_headers(&app.address, headers)
    }

    fn with_headers(base: &str, headers: reqwest::header::HeaderMap) -> Self {
        Self {
            client: reqwest::Client::builder()
                .cookie_store(true)
                // The server closes a connection idle for 5 s; a client that reused one that old could
                // send on it just as it closes. Idle connections are dropped well before.
                .pool_idle_timeout(std::time::Duration::from_secs(1))
                .redirect(reqwest::redirect::Policy::none())
                .default_headers(headers)
                .build()
                .expect("http client"),
            base: base.to_owned(),
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET")
    }

    /// GETs a page and returns its status and body.
    pub async fn page(&self, path: &str) -> (u16, String) {
        let response = self.get(path).await;
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    /// The CSRF token of the forms on a page.
    pub async fn csrf(&self, path: &str) -> String {
        let (status, body) = self.page(path).await;
        assert_eq!(status, 200, "GET {path} for its CSRF token: {body}");
        csrf_in(&body).unwrap_or_else(|| panic!("no csrf_token on {path}"))
    }

    /// POSTs a form as-is (no token added).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .form(fields)
            .send()
            .await
            .expect("POST")
    }

    /// Submits a form the way a browser would: token from `from` (a page showing the form).
    pub async fn submit(
        &self,
        from: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let token = self.csrf(from).await;
        let mut all = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(action, &all).await
    }

    /// Signs in to `email` with a wrong password `times` times at once; answers the statuses.
    pub async fn wrong_sign_ins_at_once(&self, email: &str, times: usize) -> Vec<u16> {
        let token = self.csrf("/sign-in").await;
        let fields = [
            ("csrf_token", token.as_str()),
            ("email", email),
            ("password", "not the password"),
        ];
        let requests = (0..times)
            .map(|_| async { self.post_raw("/sign-in", &fields).await.status().as_u16() });
        futures_util::future::join_all(requests).await
    }

    pub async fn sign_up(&self, email: &str, tenant: &str) -> reqwest::Response {
        self.submit(
            "/sign-up",
            "/sign-up",
            &[("email", email), ("password", PASSWORD), ("tenant", tenant)],
        )
        .await
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> reqwest::Response {
        self.submit(
            "/sign-in",
            "/sign-in",
            &[("email", email), ("password", password)],
        )
        .await
    }

    /// Signs in and asserts it worked.
    pub async fn signed_in(app: &TestApp, email: &str) -> Self {
        let visitor = Self::new(app);
        let response = visitor.sign_in(email, PASSWORD).await;
        assert_eq!(response.status(), 303, "sign in as {email}");
        visitor
    }
}

/// The value of the first `csrf_token` hidden field in a page.
pub fn csrf_in(body: &str) -> Option<String> {
    let at = body.find("name=\"csrf_token\" value=\"")? + "name=\"csrf_token\" value=\"".len();
    let rest = &body[at..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// The `Set-Cookie` headers of a response.
pub fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect()
}

/// An argon2id hash of [`PASSWORD`], computed once per test binary.
fn password_hash() -> String {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        password::hash(&Password::candidate(PASSWORD.into())).expect("hash the test password")
    })
    .clone()
}

/// Adds a user (created if needed) to a tenant with a role; returns the user id.
/// The `value` of the secret's copy box on a page, if it shows one.
pub fn shown_secret(body: &str) -> Option<String> {
    let rest = &body[body.find("id=\"secret\"")?..];
    let start = rest.find("value=\"")? + "value=\"".len();
    Some(rest[start..start + rest[start..].find('"')?].to_owned())
}

pub async fn add_member(app: &TestApp, tenant_id: &str, email: &str, role: &str) -> String {
    let store = app.store.clone();
    let (tenant_id, email, role) = (tenant_id.to_owned(), email.to_owned(), role.to_owned());
    let hash = password_hash();
    tokio::task::spawn_blocking(move || {
        let mut conn = store.conn().expect("conn");
        let user_id = match users::find_by_email(&mut conn, &email).expect("find user") {
            Some(user) => user.id,
            None => users::create(&mut conn, &email, hash, now()).expect("insert user"),
        };
        memberships::insert(
            &mut conn,
            &Membership {
                tenant_id,
                user_id: user_id.clone(),
                role,
                created_at: now(),
            },
        )
        .expect("insert membership");
        user_id
    })
    .await
    .expect("add member task")
}

/// The role a user has in a tenant, if any.
pub async fn role_of(app: &TestApp, tenant_id: &str, user_id: &str) -> Option<String> {
    let store = app.store.clone();
    let (tenant_id, user_id) = (tenant_id.to_owned(), user_id.to_owned());
    tokio::task::spawn_blocking(move || {
        let mut conn = store.conn().expect("conn");
        schema::memberships::table
            .filter(schema::memberships::tenant_id.eq(tenant_id))
            .filter(schema::memberships::user_id.eq(user_id))
            .select(schema::memberships::role)
            .first::<String>(&mut conn)
            .optional()
            .expect("query role")
    })
    .await
    .expect("role task")
}

/// The user id behind an e-mail address.
pub async fn user_id(app: &TestApp, email: &str) -> String {
    let store = app.store.clone();
    let email = email.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = store.conn().expect("conn");
        users::find_by_email(&mut conn, &email)
            .expect("find user")
            .expect("user exists")
            .id
    })
    .await
    .expect("user task")
}

/// Audit actions recorded for a tenant, oldest first.
pub async fn audit_actions(app: &TestApp, tenant_id: &str) -> Vec<String> {
    let store = app.store.clone();
    let tenant_id = tenant_id.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = store.conn().expect("conn");
        schema::audit_events::table
            .filter(schema::audit_events::tenant_id.eq(tenant_id))
            .order(schema::audit_events::occurred_at.asc())
            .select(schema::audit_events::action)
            .load::<String>(&mut conn)
            .expect("query audit")
    })
    .await
    .expect("audit task")
}

/// How many sessions a user has.
pub async fn session_count(app: &TestApp, user_id: &str) -> i64 {
    let store = app.store.clone();
    let user_id = user_id.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = store.conn().expect("conn");
        schema::sessions::table
            .filter(schema::sessions::user_id.eq(user_id))
            .count()
            .get_result(&mut conn)
            .expect("count sessions")
    })
    .await
    .expect("session task")
}

/// Runs SQL-free store work in a blocking task (for tests that age sessions and such).
pub async fn with_conn<T: Send + 'static>(
    app: &TestApp,
    work: impl FnOnce(&mut latchkey::store::DbConnection) -> T + Send + 'static,
) -> T {
    let store = app.store.clone();
    tokio::task::spawn_blocking(move || work(&mut store.conn().expect("conn")))
        .await
        .expect("store task")
}
