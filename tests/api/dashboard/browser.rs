//! Browser journeys in headless Chromium from Debian's packages, driven over WebDriver by
//! fantoccini through a chromedriver each test starts on a free port with a fresh profile.
//! They also take the screenshots in `docs/screenshots/` (refreshed with
//! `LATCHKEY_UPDATE_SCREENSHOTS=1 cargo test --test api browser`).

use std::cell::RefCell;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use super::support::PASSWORD;
use crate::helpers::{TestApp, free_port, within};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Why a browser test skips where Chromium is missing (`scripts/test` installs it).
const NO_BROWSER: &str =
    "needs chromium and chromium-driver (apt-get install chromium chromium-driver)";

/// One browser at a time: the machines that run this have few cores.
fn one_at_a_time() -> &'static tokio::sync::Mutex<()> {
    static LOCK: OnceLock<tokio::sync::Mutex<()>> = OnceLock::new();
    LOCK.get_or_init(|| tokio::sync::Mutex::new(()))
}

/// A headless Chromium pointed at a test app. Dropping it ends chromedriver and its browser.
pub struct Browser {
    pub client: Client,
    base: String,
    driver: Child,
    _profile: tempfile::TempDir,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Browser {
    /// Starts a browser, or returns `None` when Chromium is not installed and
    /// `LATCHKEY_REQUIRE_BROWSER` is unset (the test then skips, saying [`NO_BROWSER`]);
    /// `scripts/test` sets it, so CI never skips.
    pub async fn launch(app: &TestApp) -> Option<Self> {
        let installed =
            std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists();
        if !installed {
            assert!(
                std::env::var_os("LATCHKEY_REQUIRE_BROWSER").is_none(),
                "{NO_BROWSER}"
            );
            return None;
        }
        let turn = one_at_a_time().lock().await;
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().expect("profile dir");
        let webdriver = format!("http://127.0.0.1:{port}");
        within(Duration::from_secs(5), || async move {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .await;
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&webdriver)
            .await
            .expect("connect to chromedriver");
        Some(Self {
            client,
            base: app.address.clone(),
            driver,
            _profile: profile,
            _turn: turn,
        })
    }

    pub async fn open(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
    }

    /// The path (and query) of the page shown.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("current url");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Types into a field (found by CSS selector), replacing what was there.
    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("clear field");
        field.send_keys(value).await.expect("type");
    }

    pub async fn select(&self, css: &str, value: &str) {
        self.find(css)
            .await
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("select {value} in {css}: {e}"));
    }

    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Clicks a link or submit button and waits until the browser has left the page and loaded the
    /// answer (clicking returns before the navigation starts).
    pub async fn click_through(&self, css: &str) {
        let old = self.find("html").await;
        self.click(css).await;
        self.wait_for_next_page(old).await;
    }

    /// Waits until `old` (the previous page's root element) is gone and the new page loaded.
    pub async fn wait_for_next_page(&self, old: fantoccini::elements::Element) {
        within(Duration::from_secs(15), || async {
            old.tag_name().await.is_err()
        })
        .await;
        within(Duration::from_secs(5), || async {
            let state = self.client.execute("return document.readyState", vec![]);
            state.await.is_ok_and(|state| state == "complete")
        })
        .await;
    }

    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(15))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("find {css}: {e}"))
    }

    pub async fn exists(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .expect("find_all")
            .is_empty()
    }

    /// The visible text of the page.
    pub async fn text(&self) -> String {
        let text = RefCell::new(None);
        within(Duration::from_secs(1), || async {
            *text.borrow_mut() = self.find("body").await.text().await.ok();
            text.borrow().is_some()
        })
        .await;
        text.take().expect("the page text could be read")
    }

    pub async fn value(&self, css: &str) -> String {
        self.find(css)
            .await
            .prop("value")
            .await
            .expect("value")
            .unwrap_or_default()
    }

    /// Takes a PNG of the page; with `LATCHKEY_UPDATE_SCREENSHOTS=1` it is saved as
    /// `docs/screenshots/{name}.png` (so ordinary test runs leave the work tree clean).
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "the browser returned a PNG");
        if std::env::var("LATCHKEY_UPDATE_SCREENSHOTS").as_deref() != Ok("1") {
            return;
        }
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }

    pub async fn sign_up(&self, email: &str, tenant: &str) {
        self.open("/sign-up").await;
        self.fill("#email", email).await;
        self.fill("#password", PASSWORD).await;
        self.fill("#tenant", tenant).await;
        self.click_through("form[action='/sign-up'] button[type=submit]")
            .await;
        self.wait_for_path("/").await;
    }

    pub async fn sign_in(&self, email: &str) {
        self.open("/sign-in").await;
        self.fill("#email", email).await;
        self.fill("#password", PASSWORD).await;
        self.click_through("form[action='/sign-in'] button[type=submit]")
            .await;
    }

    pub async fn sign_out(&self) {
        self.click_through("form[action='/sign-out'] button").await;
        self.wait_for_path("/sign-in?notice=signed_out").await;
    }

    pub async fn wait_for_path(&self, expected: &str) {
        if within(Duration::from_secs(15), || async {
            self.path().await == expected
        })
        .await
        .is_some()
        {
            return;
        }
        panic!(
            "expected to reach {expected}, still on {}",
            self.path().await
        );
    }

    /// Ends the WebDriver session (closing the browser); Drop then ends chromedriver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A test that panicked never closed its session: end the browser processes that use
        // this test's profile (found by id, one by one), then chromedriver.
        let profile = self._profile.path().to_string_lossy().into_owned();
        for pid in processes_mentioning(&profile) {
            let _ = Command::new("kill")
                .args(["-s", "KILL", &pid.to_string()])
                .status();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Ids of the processes whose command line contains `needle`.
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(needle))
                .unwrap_or(false)
        })
        .filter(|pid| *pid != std::process::id())
        .collect()
}

#[tokio::test]
async fn sign_up_invite_a_teammate_and_sign_out() {
    let app = TestApp::spawn().await;
    let Some(browser) = Browser::launch(&app).await else {
        skip!(NO_BROWSER)
    };

    browser.open("/sign-up").await;
    browser.screenshot("sign-up").await;
    // A mistake first: the form keeps what was typed and says what is wrong.
    browser.fill("#email", "ada@example.com").await;
    browser.fill("#password", "short").await;
    browser.fill("#tenant", "Analytical Engines").await;
    browser
        .click_through("form[action='/sign-up'] button[type=submit]")
        .await;
    let text = browser.text().await;
    assert!(text.contains("Use at least 12 characters"), "{text}");
    assert_eq!(browser.value("#email").await, "ada@example.com");
    assert_eq!(browser.value("#tenant").await, "Analytical Engines");
    browser.screenshot("sign-up-errors").await;

    browser.fill("#password", PASSWORD).await;
    browser
        .click_through("form[action='/sign-up'] button[type=submit]")
        .await;
    browser.wait_for_path("/").await;
    assert!(browser.text().await.contains("Analytical Engines"));

    browser.click_through("nav a[href='/members']").await;
    browser.fill("#invite-email", "grace@example.com").await;
    browser.select("#invite-role", "developer").await;
    browser
        .click_through("form[action='/members/invite'] button[type=submit]")
        .await;
    let link = browser.value("#invite-link").await;
    assert!(link.contains("/invitations/"), "{link}");
    browser.click("button[data-copy='invite-link']").await;
    browser.screenshot("members").await;
    // The same page on a phone-sized window: tables turn into cards, nothing is cut off.
    browser
        .client
        .set_window_size(420, 900)
        .await
        .expect("resize");
    browser.screenshot("members-phone").await;
    browser
        .client
        .set_window_size(1280, 900)
        .await
        .expect("resize");

    browser.sign_out().await;
    assert!(browser.text().await.contains("You are signed out."));
    browser.screenshot("sign-in").await;

    // The teammate opens the link in their own browser session and joins as a developer.
    let path = link.trim_start_matches(&app.address).to_owned();
    browser.open(&path).await;
    browser.fill("#password", PASSWORD).await;
    browser.click_through("main form button[type=submit]").await;
    browser.wait_for_path("/").await;
    let text = browser.text().await;
    assert!(text.contains("Developer"), "{text}");
    assert!(text.contains("grace@example.com"));
    browser.close().await;
}

/// Creates a keyspace through its form.
async fn create_keyspace(browser: &Browser, name: &str, prefix: &str) {
    browser.open("/keyspaces").await;
    browser.fill("#name", name).await;
    browser.fill("#prefix", prefix).await;
    browser.fill("#default_scopes", "documents:read").await;
    browser
        .click_through("form[action='/keyspaces'] button[type=submit]")
        .await;
    browser.wait_for_path("/keyspaces?notice=created").await;
}

/// Creates a key through the form and returns its secret (read from the copy box).
async fn create_key(browser: &Browser, name: &str, scopes: &str) -> String {
    browser.open("/keys/new").await;
    browser.fill("#name", name).await;
    browser.fill("#scopes", scopes).await;
    browser
        .click_through("form[action='/keys'] button[type=submit]")
        .await;
    let secret = browser.value("#secret").await;
    assert!(!secret.is_empty(), "the secret is shown");
    secret
}

/// Creates a root key with the given scopes through the form; returns it.
async fn create_root_key(browser: &Browser, name: &str, scopes: &[&str]) -> String {
    browser.open("/root-keys").await;
    browser.fill("#name", name).await;
    for scope in scopes {
        browser
            .click(&format!("input[name=scopes][value='{scope}']"))
            .await;
    }
    browser
        .click_through("form[action='/root-keys'] button[type=submit]")
        .await;
    browser.value("#secret").await
}

#[tokio::test]
async fn create_copy_verify_revoke_and_report_a_leak() {
    let app = TestApp::spawn().await;
    let Some(browser) = Browser::launch(&app).await else {
        skip!(NO_BROWSER)
    };
    browser.sign_up("ada@example.com", "Acme").await;
    create_keyspace(&browser, "Production", "acme_live").await;
    browser.screenshot("keyspaces").await;
    let root = create_root_key(&browser, "billing-api", &["keys:verify"]).await;
    assert!(root.starts_with("lk_root_"), "{root}");
    browser.screenshot("root-keys").await;

    // Create a key with scopes; its secret is shown once, with a copy button.
    browser.open("/keys/new").await;
    browser.fill("#name", "Customer 42").await;
    browser
        .fill("#scopes", "documents:read documents:write")
        .await;
    browser.screenshot("key-new").await;
    browser
        .click_through("form[action='/keys'] button[type=submit]")
        .await;
    let secret = browser.value("#secret").await;
    assert!(secret.starts_with("acme_live_"), "{secret}");
    browser.click("button[data-copy='secret']").await;
    // The label changes once the clipboard answers, and back after 2 s: read what it said.
    let button = browser.find("button[data-copy='secret']").await;
    let copied = RefCell::new(None);
    within(Duration::from_secs(5), || async {
        *copied.borrow_mut() = button.attr("data-copy-result").await.unwrap();
        copied.borrow().is_some()
    })
    .await;
    let copied = copied.take().expect("the copy button reports what it did");
    assert!(copied == "Copied" || copied == "Press Ctrl+C", "{copied}");
    assert!(
        browser
            .text()
            .await
            .contains("This is the only time the whole key is shown.")
    );
    browser.screenshot("key-secret").await;
    assert_eq!(app.verify_code(&root, &secret).await, "VALID");
    // A reload shows the page again without the secret, and makes nothing.
    browser.client.refresh().await.expect("reload");
    assert!(
        browser
            .text()
            .await
            .contains("This key's secret was shown once")
    );
    assert!(!browser.client.source().await.unwrap().contains(&secret));
    browser.client.back().await.expect("back to the form");
    browser.client.forward().await.expect("forward again");
    assert!(!browser.client.source().await.unwrap().contains(&secret));

    // The detail page never shows the secret again.
    browser.click_through("a[href^='/keys/']").await;
    let source = browser.client.source().await.unwrap();
    assert!(!source.contains(&secret));
    assert!(browser.text().await.contains("documents:write"));

    // Disable it with one click, then enable it again.
    browser.click_through("#toggle-enabled").await;
    assert_eq!(
        browser.find("#key-status").await.text().await.unwrap(),
        "disabled"
    );
    assert_eq!(app.verify_code(&root, &secret).await, "DISABLED");
    browser.click_through("#toggle-enabled").await;
    assert_eq!(app.verify_code(&root, &secret).await, "VALID");

    // Revoke it: first without confirming (refused), then confirmed.
    browser.fill("#reason", "customer left").await;
    browser
        .click_through("form[action$='/revoke'] button[type=submit]")
        .await;
    assert!(browser.text().await.contains("Tick the box to confirm"));
    assert_eq!(app.verify_code(&root, &secret).await, "VALID");
    browser.click("#confirm").await;
    browser
        .click_through("form[action$='/revoke'] button[type=submit]")
        .await;
    assert_eq!(
        browser.find("#key-status").await.text().await.unwrap(),
        "revoked"
    );
    assert_eq!(app.verify_code(&root, &secret).await, "REVOKED");
    browser.screenshot("key-detail").await;

    // A leaked key pasted into the report page is revoked at once, and named.
    let leaked = create_key(&browser, "Leaky CI job", "documents:read").await;
    assert_eq!(app.verify_code(&root, &leaked).await, "VALID");
    browser.open("/leaks").await;
    browser.fill("#key", &leaked).await;
    browser.fill("#reason", "pasted in a public gist").await;
    browser
        .click_through("form[action='/leaks'] button[type=submit]")
        .await;
    let result = browser.find("#leak-result").await.text().await.unwrap();
    assert!(result.contains("Revoked Leaky CI job"), "{result}");
    assert_eq!(app.verify_code(&root, &leaked).await, "REVOKED");
    browser.screenshot("leak-report").await;
    // Reported again: it was already revoked, and the page says so rather than revoking it anew.
    browser.fill("#key", &leaked).await;
    browser
        .click_through("form[action='/leaks'] button[type=submit]")
        .await;
    let result = browser.find("#leak-result").await.text().await.unwrap();
    assert!(result.contains("Leaky CI job"), "{result}");
    assert!(result.contains("was already revoked"), "{result}");
    // Something that is not ours: nothing found, nothing said about anyone else.
    browser
        .fill("#key", "acme_live_notarealkeynotarealkeynotarealkey1")
        .await;
    browser
        .click_through("form[action='/leaks'] button[type=submit]")
        .await;
    assert!(
        browser
            .find("#leak-result")
            .await
            .text()
            .await
            .unwrap()
            .contains("Nothing found")
    );

    browser.open("/keys").await;
    browser.screenshot("keys").await;
    browser.open("/audit").await;
    assert!(browser.text().await.contains("key.revoke"));
    browser.screenshot("audit").await;
    browser.open("/usage").await;
    browser.screenshot("usage").await;
    browser.close().await;
}

#[tokio::test]
async fn rotate_with_a_grace_period() {
    let app = TestApp::spawn().await;
    let Some(browser) = Browser::launch(&app).await else {
        skip!(NO_BROWSER)
    };
    browser.sign_up("ada@example.com", "Acme").await;
    create_keyspace(&browser, "Production", "acme_live").await;
    let root = create_root_key(&browser, "gateway", &["keys:verify"]).await;
    let old = create_key(&browser, "Partner", "documents:read").await;
    browser.click_through("a[href^='/keys/']").await;
    browser.fill("#grace_hours", "2").await;
    browser
        .click_through("form[action$='/rotate'] button[type=submit]")
        .await;
    let new = browser.value("#secret").await;
    assert_ne!(new, old);
    assert!(
        browser
            .text()
            .await
            .contains("The previous key keeps working until")
    );
    // Both work during the grace period.
    assert_eq!(app.verify_code(&root, &old).await, "VALID");
    assert_eq!(app.verify_code(&root, &new).await, "VALID");
    browser.click_through("a[href^='/keys/']").await;
    let text = browser.text().await;
    assert!(text.contains("Rotation family"), "{text}");
    browser.screenshot("key-rotated").await;
    browser.close().await;
}

#[tokio::test]
async fn a_developer_creates_but_cannot_revoke_root_keys_and_a_viewer_changes_nothing() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    super::support::add_member(&app, &tenant.id, "dev@acme.example.com", "developer").await;
    super::support::add_member(&app, &tenant.id, "viewer@acme.example.com", "viewer").await;
    let Some(browser) = Browser::launch(&app).await else {
        skip!(NO_BROWSER)
    };

    browser.sign_in("dev@acme.example.com").await;
    browser.wait_for_path("/").await;
    browser.open("/root-keys").await;
    assert!(
        !browser.exists("input[value='root_keys:*']").await,
        "not offered"
    );
    assert!(
        !browser.exists("form[action$='/revoke']").await,
        "no revoke button"
    );
    let root = create_root_key(&browser, "ci", &["keys:verify", "keys:create"]).await;
    assert!(root.starts_with("lk_root_"));
    // A forged revoke from the developer's own session is refused by the server.
    let token = super::support::csrf_in(&browser.client.source().await.unwrap()).unwrap();
    let page = browser.find("html").await;
    browser
        .client
        .execute(
            "const f = document.createElement('form'); f.method = 'post';
             f.action = '/root-keys/' + arguments[0] + '/revoke';
             const t = document.createElement('input'); t.name = 'csrf_token'; t.value = arguments[1];
             f.appendChild(t); document.body.appendChild(f); f.submit();",
            vec![json!(tenant.root_key_id), json!(token)],
        )
        .await
        .expect("submit a forged form");
    browser.wait_for_next_page(page).await;
    assert!(
        browser
            .text()
            .await
            .contains("As developer in this tenant you may not do this")
    );
    browser.open("/").await;
    browser.sign_out().await;

    browser.sign_in("viewer@acme.example.com").await;
    browser.wait_for_path("/").await;
    for path in ["/keys", "/keyspaces", "/root-keys", "/members"] {
        browser.open(path).await;
        // The only form a viewer sees is signing out (and filters, which only read).
        let forms = browser
            .client
            .find_all(Locator::Css("form[method=post]"))
            .await
            .unwrap();
        let mut actions = Vec::new();
        for form in forms {
            actions.push(form.attr("action").await.unwrap().unwrap_or_default());
        }
        assert!(
            actions.iter().all(|a| a == "/sign-out"),
            "{path} offers {actions:?}"
        );
    }
    browser.open("/keys/new").await;
    let text = browser.text().await;
    assert!(
        text.contains("As viewer in this tenant you may not do this"),
        "{text}"
    );
    assert!(
        browser.exists("nav.sections a[href='/keys']").await,
        "the navigation is there"
    );
    browser.screenshot("viewer-forbidden").await;
    browser.close().await;
}
