//! A new secret is shown once, on a page reached by redirect (Post/Redirect/Get), so reloading
//! it or going Back never posts the form again and never makes another credential.
//!
//! The form's answer seals the secret into a cookie for this browser session only: encrypted
//! (AES-256-GCM under a key derived from `LATCHKEY_SECRET_KEY`), bound to the session and to the
//! credential's id, valid for [`REVEAL_FOR`], and without an expiry, so the browser keeps it in
//! memory rather than on disk. The page it redirects to opens the cookie, shows the secret and
//! removes the cookie in the same answer: a reload finds none and says the secret was shown
//! once. The server stores nothing, so any node can show it.

use std::borrow::Cow;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{HttpRequest, HttpResponse};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{NaiveDateTime, TimeDelta};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};

use super::{Dashboard, PageError, see_other};
use crate::auth::session::SignedIn;
use crate::domain::key::PlainKey;
use crate::domain::secrets::SecretKey32;
use crate::error::ApiError;

/// How long after the form's answer its secret can still be shown.
const REVEAL_FOR: TimeDelta = TimeDelta::minutes(10);

/// What the page shows, sealed in the cookie.
#[derive(Serialize, Deserialize)]
struct Sealed {
    secret: String,
    /// For a rotation: when the previous key stops working, as shown.
    previous_expires: Option<String>,
    /// Until when it may be shown (Unix seconds).
    until: i64,
}

/// A secret on its way to the one page that shows it: a key, a root key or a webhook signing
/// secret.
pub struct Reveal {
    pub secret: SecretString,
    pub previous_expires: Option<String>,
}

/// Seals and opens reveal cookies.
pub struct Reveals {
    key: SecretKey32,
}

impl Reveal {
    /// A new key's or root key's secret, shown once.
    pub fn key(key: PlainKey, previous_expires: Option<String>) -> Self {
        Self {
            secret: key.into_secret(),
            previous_expires,
        }
    }
}

impl Reveals {
    pub fn new(key: SecretKey32) -> Self {
        Self { key }
    }

    /// The cookie that carries `reveal` to the page of credential `id`, for `session` only.
    pub fn seal(
        &self,
        dashboard: &Dashboard,
        session: &SignedIn,
        id: &str,
        reveal: &Reveal,
        now: NaiveDateTime,
    ) -> Cookie<'static> {
        let sealed = Sealed {
            secret: reveal.secret.expose_secret().to_owned(),
            previous_expires: reveal.previous_expires.clone(),
            until: (now + REVEAL_FOR).and_utc().timestamp(),
        };
        let plain = secrecy::zeroize::Zeroizing::new(
            serde_json::to_vec(&sealed).expect("a reveal serialises"),
        );
        // Wiped when dropped, like the serialised copy.
        drop(SecretString::from(sealed.secret));
        let value = URL_SAFE_NO_PAD.encode(self.key.seal(&aad(session, id), &plain));
        cookie(dashboard, cookie_name(dashboard, id), value)
    }

    /// The secret sealed for credential `id` in this session, if its cookie is here, intact and
    /// not too old.
    pub fn open(
        &self,
        req: &HttpRequest,
        dashboard: &Dashboard,
        session: &SignedIn,
        id: &str,
        now: NaiveDateTime,
    ) -> Option<Reveal> {
        let cookie = req.cookie(&cookie_name(dashboard, id))?;
        let sealed = URL_SAFE_NO_PAD.decode(cookie.value()).ok()?;
        let plain = self.key.open(&aad(session, id), &sealed)?;
        let sealed: Sealed = serde_json::from_slice(&plain).ok()?;
        let secret = SecretString::from(sealed.secret);
        (now.and_utc().timestamp() < sealed.until).then_some(Reveal {
            secret,
            previous_expires: sealed.previous_expires,
        })
    }

    /// The cookie that removes credential `id`'s reveal: sent with the page that shows it.
    pub fn removal(&self, dashboard: &Dashboard, id: &str) -> Cookie<'static> {
        let mut removal = cookie(dashboard, cookie_name(dashboard, id), String::new());
        removal.make_removal();
        removal
    }

    /// The answer to a form that made credential `id`: a redirect to `location`, the page that
    /// shows its secret, carrying the secret (none on a replay: it was shown the first time).
    pub fn redirect(
        &self,
        dashboard: &Dashboard,
        session: &SignedIn,
        location: &str,
        id: &str,
        reveal: Option<Reveal>,
        now: NaiveDateTime,
    ) -> Result<HttpResponse, PageError> {
        let answer = see_other(location);
        match reveal {
            Some(reveal) => with_cookie(answer, &self.seal(dashboard, session, id, &reveal, now)),
            None => Ok(answer),
        }
    }
}

/// `answer` with `cookie` set.
pub fn with_cookie(
    mut answer: HttpResponse,
    cookie: &Cookie<'_>,
) -> Result<HttpResponse, PageError> {
    answer
        .add_cookie(cookie)
        .map_err(|err| PageError::from(ApiError::internal(err)))?;
    Ok(answer)
}

/// The session and the credential the cookie is for: it opens for nothing else.
fn aad(session: &SignedIn, id: &str) -> Vec<u8> {
    let mut aad = b"latchkey-reveal:".to_vec();
    aad.extend_from_slice(&session.digest);
    aad.push(b':');
    aad.extend_from_slice(id.as_bytes());
    aad
}

/// One cookie per credential, so two tabs creating keys at once each show their own.
fn cookie_name(dashboard: &Dashboard, id: &str) -> String {
    let prefix = if dashboard.https { "__Host-" } else { "" };
    format!("{prefix}latchkey_reveal_{id}")
}

/// Strict: sent only on the dashboard's own redirect, never on a link from elsewhere.
fn cookie(dashboard: &Dashboard, name: String, value: String) -> Cookie<'static> {
    Cookie::build(Cow::Owned(name), value)
        .path("/")
        .http_only(true)
        .secure(dashboard.https)
        .same_site(SameSite::Strict)
        .finish()
}
