//! Webhooks: every event reaches each subscribed endpoint once, signed as the official
//! `standardwebhooks` library verifies it; failed deliveries retry on the documented schedule;
//! a node killed mid-delivery loses nothing; bad endpoints are refused and change nothing; the
//! secret is shown once and rotates with an overlap; another tenant's endpoints do not exist.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::dashboard::members::invite_link;
use crate::dashboard::support::{PASSWORD, Visitor, shown_secret, user_id};
use crate::helpers::{
    Api, NEEDS_POSTGRES, Received, Receiver, Reply, TestApp, assert_no_secret, assert_problem,
    expect_json, postgres_pass, s, verify_with_standardwebhooks,
};
use crate::nodes::{Cluster, Node};
use crate::oauth::leaks::{post_report, report, sign, signed, world_with_scanner_and};

/// Tests deliver to a receiver on 127.0.0.1 over plain http.
const LOCAL_RECEIVERS: &[(&str, &str)] = &[
    ("LATCHKEY_WEBHOOK_ALLOW_HTTP", "1"),
    ("LATCHKEY_WEBHOOK_ALLOW_PRIVATE", "1"),
];

/// Every event type latchkey emits today.
const EMITTED: &[&str] = &[
    "key.created",
    "key.updated",
    "key.disabled",
    "key.enabled",
    "key.rotated",
    "key.revoked",
    "key.leaked",
    "root_key.created",
    "root_key.revoked",
    "member.added",
    "member.removed",
    "webhook.test",
];

/// Creates an endpoint; answers its id and secret.
async fn endpoint(api: &Api, token: &str, url: &str, events: &[&str]) -> (String, String) {
    let body = json!({"url": url, "events": events, "description": "test receiver"});
    let created = expect_json(
        api.post_json("/v1/webhook-endpoints", token, &body).await,
        201,
    )
    .await;
    (s(&created, "id"), s(&created, "secret"))
}

async fn deliveries(api: &Api, token: &str, endpoint_id: &str) -> Vec<Value> {
    let page = api
        .get_ok(
            &format!("/v1/webhook-endpoints/{endpoint_id}/deliveries?limit=100"),
            token,
        )
        .await;
    page["data"].as_array().cloned().unwrap_or_default()
}

/// Which entry of an endpoint's delivery log to watch.
#[derive(Clone, Copy)]
enum Pick {
    Newest,
    Oldest,
}
use Pick::{Newest, Oldest};

/// Polls the endpoint's delivery log (up to 10 s) until `done` holds for the picked entry;
/// answers that entry as last read.
async fn delivery_when(
    api: &Api,
    token: &str,
    endpoint_id: &str,
    pick: Pick,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let log = deliveries(api, token, endpoint_id).await;
        let entry = match pick {
            Newest => log.first(),
            Oldest => log.last(),
        };
        let entry = entry.cloned().unwrap_or(Value::Null);
        if done(&entry) || std::time::Instant::now() > deadline {
            return entry;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn time(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("a timestamp: {value}"))
}

fn types(received: &[Received]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in received {
        *counts.entry(r.event_type()).or_insert(0) += 1;
    }
    counts
}

#[tokio::test]
async fn every_event_reaches_each_subscribed_endpoint_once_signed() {
    let (world, scanner) = world_with_scanner_and(LOCAL_RECEIVERS).await;
    let (app, t) = (&world.app, world.token());
    let everything = Receiver::start(&app.clock).await;
    let revocations = Receiver::start(&app.clock).await;
    let (all_id, all_secret) = endpoint(app, t, &everything.url, EMITTED).await;
    let (_, revoked_secret) = endpoint(app, t, &revocations.url, &["key.revoked"]).await;

    // Keys: create, update, disable, enable, rotate (a successor is created), revoke.
    let first = world.create_key(|k| k.name("first")).await;
    let path = format!("/v1/keys/{}", first.id);
    for body in [
        json!({"name": "renamed"}),
        json!({"enabled": false}),
        json!({"enabled": true}),
    ] {
        expect_json(app.patch_json(&path, t, &body).await, 200).await;
    }
    let rotated = expect_json(
        world
            .post_json(
                &format!("/v1/keys/{}/rotate", first.id),
                json!({"grace_period_seconds": 60}),
            )
            .await,
        201,
    )
    .await;
    let successor = s(&rotated, "id");
    let revoke = json!({"reason": "customer left"});
    let path = format!("/v1/keys/{successor}/revoke");
    expect_json(world.post_json(&path, revoke).await, 200).await;
    // A scanner reports a key: it is revoked as leaked.
    let leaked = world.create_key(|k| k.name("leaky")).await;
    let body = report(&[&leaked.key]);
    let response = post_report(app, &body, &signed(&sign(&scanner.key, &body))).await;
    assert_eq!(response.status(), 200);
    // Root keys: create, revoke.
    let body = json!({"name": "ci", "scopes": ["keys:read"]});
    let root = expect_json(world.post_json("/v1/root-keys", body).await, 201).await;
    let path = format!("/v1/root-keys/{}/revoke", s(&root, "id"));
    expect_json(world.post_json(&path, json!({})).await, 200).await;
    // Members: one joins through an invitation and is removed.
    let owner = Visitor::signed_in(app, "owner@acme.example.com").await;
    let fields = [("email", "dev@acme.example.com"), ("role", "developer")];
    let invited = owner.submit("/members", "/members/invite", &fields).await;
    let link = invite_link(&invited.text().await.unwrap()).expect("an invite link");
    let path = format!("/invitations/{}", link.rsplit('/').next().unwrap());
    let joined = Visitor::new(app)
        .submit(&path, &path, &[("password", PASSWORD)])
        .await;
    assert_eq!(joined.status(), 303);
    let dev = user_id(app, "dev@acme.example.com").await;
    let removed = owner
        .submit("/members", &format!("/members/{dev}/remove"), &[])
        .await;
    assert_eq!(removed.status(), 303);
    // And a test event.
    let path = format!("/v1/webhook-endpoints/{all_id}/test");
    expect_json(world.post_json(&path, json!({})).await, 202).await;

    let expected: BTreeMap<String, usize> = [
        ("key.created", 3), // first, its successor, the leaked one
        ("key.updated", 1),
        ("key.disabled", 1),
        ("key.enabled", 1),
        ("key.rotated", 1),
        ("key.revoked", 2),
        ("key.leaked", 1),
        ("root_key.created", 1),
        ("root_key.revoked", 1),
        ("member.added", 1),
        ("member.removed", 1),
        ("webhook.test", 1),
    ]
    .into_iter()
    .map(|(t, n)| (t.to_owned(), n))
    .collect();
    let total: usize = expected.values().sum();
    let got = everything.wait_for(total, Duration::from_secs(30)).await;
    let revoked = revocations.wait_for(2, Duration::from_secs(30)).await;
    // Nothing more trickles in.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got_now = everything.received();
    assert_eq!(types(&got_now), expected, "{got:#?}");
    let only_revoked: BTreeMap<String, usize> = [("key.revoked".to_owned(), 2)].into();
    assert_eq!(types(&revocations.received()), only_revoked);
    // Once each: one webhook-id per event, the same at both endpoints for the same event.
    let ids: BTreeSet<&str> = got_now.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), total);
    assert!(revoked.iter().all(|r| ids.contains(r.id.as_str())));

    verify_with_standardwebhooks(&[&all_secret], &got_now);
    verify_with_standardwebhooks(&[&revoked_secret], &revoked);

    // Payloads name things, never a secret or digest.
    for r in &got_now {
        for secret in [
            &first.key,
            &leaked.key,
            &s(&rotated, "key"),
            &s(&root, "key"),
        ] {
            assert!(!r.body.contains(secret.as_str()), "{}", r.body);
        }
        assert!(!r.body.contains("digest"), "{}", r.body);
        assert_eq!(r.payload()["data"]["tenant_id"], world.tenant.id.as_str());
    }
    let of = |kind: &str| -> Vec<Value> {
        got_now
            .iter()
            .filter(|r| r.event_type() == kind)
            .map(|r| r.payload()["data"].clone())
            .collect()
    };
    let leak = &of("key.leaked")[0];
    assert_eq!(leak["key_id"], leaked.id.as_str());
    assert_eq!(leak["source"], "leak_report");
    assert_eq!(
        leak["leaks"][0]["url"],
        "https://github.com/octo/app/blob/main/.env"
    );
    let revocations = of("key.revoked");
    let by_api = revocations
        .iter()
        .find(|d| d["key_id"] == successor.as_str())
        .unwrap();
    assert_eq!(by_api["reason"], "customer left");
    assert_eq!(by_api["source"], "api");
    assert!(by_api["revoked_at"].is_string());
    assert_eq!(of("key.rotated")[0]["successor_key_id"], successor.as_str());
    assert_eq!(of("key.updated")[0]["changed_fields"], json!(["name"]));
    assert_eq!(of("key.updated")[0]["name"], "renamed");
    assert_eq!(of("member.added")[0]["email"], "dev@acme.example.com");
    assert_eq!(of("member.removed")[0]["user_id"], dev.as_str());
    assert_eq!(of("member.removed")[0]["source"], "dashboard");
    assert_eq!(of("root_key.created")[0]["name"], "ci");

    // The delivery log says the same.
    let log = deliveries(app, t, &all_id).await;
    assert_eq!(log.len(), total);
    for d in &log {
        assert_eq!(d["status"], "succeeded", "{d}");
        assert_eq!(d["attempts"], 1);
        assert_eq!(d["last_status_code"], 200);
        assert!(d["next_attempt_at"].is_null());
    }
}

#[tokio::test]
async fn a_receiver_failing_three_times_gets_the_event_at_the_fourth_attempt_on_schedule() {
    let world = TestApp::spawn_with(LOCAL_RECEIVERS)
        .await
        .with_space("acme")
        .await;
    let (app, t) = (&world.app, world.token());
    let receiver = Receiver::start(&app.clock).await;
    receiver.script([Reply::Status(500), Reply::Status(503), Reply::Status(404)]);
    let (id, secret) = endpoint(app, t, &receiver.url, &["key.created"]).await;
    world.create_key(|k| k).await;

    // After the n-th failure the next attempt is due 5 s, 5 min, 30 min later (plus at most
    // 10 % jitter); the test moves the app's clock to it instead of waiting.
    for (failed, delay) in [(1, 5), (2, 300), (3, 1_800)] {
        let got = receiver.wait_for(failed, Duration::from_secs(15)).await;
        assert_eq!(got.len(), failed, "attempt {failed} came, and only it");
        let entry = delivery_when(app, t, &id, Newest, |e| e["attempts"] == failed).await;
        assert_eq!(entry["status"], "pending", "{entry}");
        let wait = time(&entry["next_attempt_at"]) - time(&entry["last_attempt_at"]);
        let low = TimeDelta::seconds(delay);
        assert!(
            wait >= low && wait <= low + low / 10,
            "after {failed}: {wait}"
        );
        let endpoint_now = app.get_ok(&format!("/v1/webhook-endpoints/{id}"), t).await;
        assert!(endpoint_now["failing_since"].is_string());
        // Not before it is due.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(
            receiver.received().len(),
            failed,
            "no attempt before it is due"
        );
        let ahead = time(&entry["next_attempt_at"]) - Utc::now().naive_utc().and_utc()
            + TimeDelta::milliseconds(10);
        let already = app.clock.now() - Utc::now().naive_utc();
        app.clock
            .advance((ahead - already).to_std().unwrap_or_default());
    }
    let got = receiver.wait_for(4, Duration::from_secs(15)).await;
    assert_eq!(got.len(), 4);
    let entry = delivery_when(app, t, &id, Newest, |e| e["status"] == "succeeded").await;
    assert_eq!(entry["attempts"], 4, "{entry}");
    assert_eq!(entry["last_status_code"], 200);
    // One message, four attempts, each signed anew for its own moment.
    assert!(got.iter().all(|r| r.id == got[0].id));
    let gaps: Vec<i64> = got
        .windows(2)
        .map(|w| (w[1].at - w[0].at).num_seconds())
        .collect();
    for (gap, delay) in gaps.iter().zip([5, 300, 1_800]) {
        assert!(*gap >= delay && *gap <= delay + delay / 10 + 3, "{gaps:?}");
    }
    verify_with_standardwebhooks(&[&secret], &got);
    let endpoint_now = app.get_ok(&format!("/v1/webhook-endpoints/{id}"), t).await;
    assert!(endpoint_now["failing_since"].is_null(), "a success ends it");
}

#[tokio::test]
async fn a_node_killed_mid_delivery_loses_nothing() {
    skip_unless!(postgres_pass(), NEEDS_POSTGRES);
    let receiver = Receiver::start(&latchkey::domain::time::Clock::system()).await;
    // The first attempt hangs: the node sending it is killed while it waits.
    receiver.script([Reply::Hang]);
    let mut env = LOCAL_RECEIVERS.to_vec();
    env.push(("LATCHKEY_WEBHOOK_CLAIM_SECONDS", "12"));
    let world = Cluster::start(1, &env).await.with_space("acme").await;
    let t = world.token().to_owned();
    let (id, secret) = endpoint(&world.app.nodes[0], &t, &receiver.url, &["key.created"]).await;
    let key = world.create_key(|k| k).await;
    let got = receiver.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(got.len(), 1, "the first node is sending");
    let mut cluster = world.app;
    drop(cluster.nodes.remove(0)); // SIGKILL, mid-request

    // Another node takes the delivery over once the dead node's claim runs out.
    let second = Node::start(&cluster.db.url(), Some(&cluster.redis.url()), &env).await;
    let got = receiver.wait_for(2, Duration::from_secs(40)).await;
    assert_eq!(got.len(), 2, "redelivered by the second node");
    assert_eq!(
        got[1].id, got[0].id,
        "the same message: receivers de-duplicate"
    );
    assert_eq!(got[1].payload()["data"]["key_id"], key.id.as_str());
    let entry = delivery_when(&second, &t, &id, Newest, |e| e["status"] == "succeeded").await;
    assert_eq!(entry["status"], "succeeded", "{entry}");
    // The dead node's attempt was never recorded: one attempt, the one that arrived.
    assert_eq!(entry["attempts"], 1);
    verify_with_standardwebhooks(&[&secret], &got[1..]);
}

#[tokio::test]
async fn bad_endpoints_are_refused_naming_the_field_and_change_nothing() {
    // Plain http is allowed here, private addresses are not.
    let world = TestApp::spawn_with(&[("LATCHKEY_WEBHOOK_ALLOW_HTTP", "1")])
        .await
        .with_space("acme")
        .await;
    let (app, t) = (&world.app, world.token());
    let good = json!({"url": "http://hooks.example.com/in", "events": ["key.created"]});
    let cases = [
        (json!({"url": "http://127.0.0.1:8080/x"}), "url"),
        (json!({"url": "http://[::1]/x"}), "url"),
        (
            json!({"url": "http://169.254.169.254/latest/meta-data"}),
            "url",
        ),
        (json!({"url": "http://10.0.0.7/x"}), "url"),
        (json!({"url": "http://localhost:9000/x"}), "url"),
        (json!({"url": "http://user:pw@hooks.example.com/"}), "url"),
        (json!({"url": "ftp://hooks.example.com/"}), "url"),
        (json!({"url": "not a url"}), "url"),
        (json!({"events": ["key.exploded"]}), "events"),
        (json!({"events": []}), "events"),
        (json!({"description": "bell\u{7}"}), "description"),
    ];
    for (change, field) in &cases {
        let mut body = good.clone();
        crate::helpers::merge(&mut body, change.clone());
        let response = app.post_json("/v1/webhook-endpoints", t, &body).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], *field, "{change}");
        // The submitted value is not echoed.
        if let Some(url) = change["url"].as_str() {
            assert!(!problem.to_string().contains(url), "{problem}");
        }
    }
    let listed = app.get_ok("/v1/webhook-endpoints", t).await;
    assert_eq!(listed["data"], json!([]), "nothing was created");

    // A change to an existing endpoint is refused the same way and changes nothing.
    let (id, _) = endpoint(app, t, "http://hooks.example.com/in", &["key.created"]).await;
    let before = app.get_ok(&format!("/v1/webhook-endpoints/{id}"), t).await;
    for (change, field) in &cases {
        let path = format!("/v1/webhook-endpoints/{id}");
        let response = app.patch_json(&path, t, change).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], *field);
    }
    let after = app.get_ok(&format!("/v1/webhook-endpoints/{id}"), t).await;
    assert_eq!(before, after);

    // A name that resolves to a private address is refused when delivering (DNS may change
    // after the endpoint was made), and nothing reaches the address.
    let Some(alias) = loopback_alias() else {
        eprintln!("no loopback alias in /etc/hosts: the resolver check is not exercised");
        return;
    };
    let receiver = Receiver::start(&app.clock).await;
    let url = receiver.url.replace("127.0.0.1", &alias);
    let (id, _) = endpoint(app, t, &url, &["key.created"]).await;
    let path = format!("/v1/webhook-endpoints/{id}/test");
    expect_json(world.post_json(&path, json!({})).await, 202).await;
    let entry = delivery_when(app, t, &id, Newest, |e| e["attempts"] == 1).await;
    assert_eq!(entry["status"], "pending", "{entry}");
    assert!(
        entry["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("private"),
        "{entry}"
    );
    assert!(entry["last_status_code"].is_null());
    assert!(receiver.received().is_empty());
}

/// A host name other than `localhost` that /etc/hosts maps to 127.0.0.1, if any.
fn loopback_alias() -> Option<String> {
    let hosts = std::fs::read_to_string("/etc/hosts").ok()?;
    hosts
        .lines()
        .filter_map(|l| l.split('#').next())
        .filter(|l| l.split_whitespace().next() == Some("127.0.0.1"))
        .flat_map(|l| {
            l.split_whitespace()
                .skip(1)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .find(|name| !name.contains("localhost"))
}

#[tokio::test]
async fn the_secret_is_shown_once_and_a_rotation_signs_with_both_during_the_overlap() {
    let world = TestApp::spawn_with(LOCAL_RECEIVERS)
        .await
        .with_space("acme")
        .await;
    let (app, t) = (&world.app, world.token());
    let receiver = Receiver::start(&app.clock).await;
    let body = json!({"url": receiver.url, "events": ["key.revoked"]});
    let response = app.post_json("/v1/webhook-endpoints", t, &body).await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let created = expect_json(response, 201).await;
    let (id, old) = (s(&created, "id"), s(&created, "secret"));
    assert!(old.starts_with("whsec_") && old.len() > 40, "{old}");
    assert_eq!(created["enabled"], true);
    let shown = app.get_ok(&format!("/v1/webhook-endpoints/{id}"), t).await;
    assert!(shown.get("secret").is_none());
    assert_no_secret(&shown, &old);
    assert_no_secret(&app.get_ok("/v1/webhook-endpoints", t).await, &old);
    let sealed = crate::dashboard::support::with_conn(app, {
        let id = id.clone();
        move |conn| {
            use diesel::prelude::*;
            use latchkey::store::schema::webhook_endpoints as e;
            e::table
                .filter(e::id.eq(id))
                .select(e::secret_sealed)
                .first::<Vec<u8>>(conn)
                .unwrap()
        }
    })
    .await;
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(old.trim_start_matches("whsec_"))
        .unwrap();
    assert!(
        !sealed.windows(raw.len()).any(|w| w == raw.as_slice()),
        "sealed at rest"
    );

    let test = format!("/v1/webhook-endpoints/{id}/test");
    expect_json(world.post_json(&test, json!({})).await, 202).await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].signature.matches("v1,").count(), 1);
    verify_with_standardwebhooks(&[&old], &got);

    let rotate = format!("/v1/webhook-endpoints/{id}/rotate-secret");
    let response = world
        .post_json(&rotate, json!({"overlap_seconds": 3600}))
        .await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let rotated = expect_json(response, 200).await;
    let new = s(&rotated, "secret");
    assert_ne!(new, old);
    assert!(rotated["previous_secret_expires_at"].is_string());
    expect_json(world.post_json(&test, json!({})).await, 202).await;
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(got[1].signature.matches("v1,").count(), 2, "both sign");
    verify_with_standardwebhooks(&[&old, &new], &got[1..]);

    // After the overlap, only the new secret signs.
    app.clock.advance(Duration::from_secs(3_601));
    expect_json(world.post_json(&test, json!({})).await, 202).await;
    let got = receiver.wait_for(3, Duration::from_secs(10)).await;
    assert_eq!(got[2].signature.matches("v1,").count(), 1);
    verify_with_standardwebhooks(&[&new], &got[2..]);

    // Redelivery sends the same message again.
    let log = deliveries(app, t, &id).await;
    let first = log.last().unwrap();
    let path = format!(
        "/v1/webhook-endpoints/{id}/deliveries/{}/redeliver",
        s(first, "id")
    );
    expect_json(world.post_json(&path, json!({})).await, 202).await;
    let got = receiver.wait_for(4, Duration::from_secs(10)).await;
    assert_eq!(got[3].id, got[0].id);
    verify_with_standardwebhooks(&[&new], &got[3..]);
    let entry = delivery_when(app, t, &id, Oldest, |e| e["attempts"] == 2).await;
    assert_eq!(entry["status"], "succeeded", "{entry}");

    // The audit trail has all of it, and no secret.
    let audit = app.get_ok("/v1/audit-events?limit=100", t).await;
    for secret in [&old, &new] {
        assert_no_secret(&audit, secret);
    }
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for action in [
        "webhook_endpoint.create",
        "webhook_endpoint.rotate_secret",
        "webhook_endpoint.test",
        "webhook_delivery.redeliver",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
}

#[tokio::test]
async fn another_tenants_endpoints_are_not_found_and_scopes_are_enforced() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let (app, t) = (&world.app, world.token());
    // https only by default.
    let body = json!({"url": "http://hooks.example.com/in", "events": ["key.created"]});
    let problem = assert_problem(
        app.post_json("/v1/webhook-endpoints", t, &body).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "url");
    let (id, _) = endpoint(app, t, "https://hooks.example.com/in", &["key.created"]).await;
    let test = format!("/v1/webhook-endpoints/{id}/test");
    let delivery = expect_json(world.post_json(&test, json!({})).await, 202).await;
    let delivery_id = s(&delivery, "id");

    let other = app.tenant("globex").await;
    let o = other.root_key.as_str();
    let path = format!("/v1/webhook-endpoints/{id}");
    let not_found = [
        app.get_as(&path, o).await,
        app.patch_json(&path, o, &json!({"enabled": false})).await,
        app.call(reqwest::Method::DELETE, &path, Some(o), None)
            .await,
        app.post_json(&format!("{path}/test"), o, &json!({})).await,
        app.post_json(&format!("{path}/rotate-secret"), o, &json!({}))
            .await,
        app.get_as(&format!("{path}/deliveries"), o).await,
        app.post_json(
            &format!("{path}/deliveries/{delivery_id}/redeliver"),
            o,
            &json!({}),
        )
        .await,
        app.get_as("/v1/webhook-endpoints/not-an-id", t).await,
    ];
    for response in not_found {
        assert_problem(response, 404, "not_found").await;
    }
    assert_eq!(
        app.get_ok("/v1/webhook-endpoints", o).await["data"],
        json!([])
    );
    let mine = app.get_ok(&path, t).await;
    assert_eq!(mine["enabled"], true, "unchanged by the other tenant");
    assert_eq!(deliveries(app, t, &id).await.len(), 1);

    // Scopes: webhooks:read reads, webhooks:write writes, nothing else does either.
    let mut limited = Vec::new();
    for scope in ["keys:read", "webhooks:read"] {
        let body = json!({"name": "limited", "scopes": [scope]});
        let created = expect_json(world.post_json("/v1/root-keys", body).await, 201).await;
        limited.push(s(&created, "key"));
    }
    let (keys_only, reader) = (&limited[0], &limited[1]);
    assert_problem(
        app.get_as("/v1/webhook-endpoints", keys_only).await,
        403,
        "forbidden",
    )
    .await;
    assert_eq!(
        app.get_as("/v1/webhook-endpoints", reader).await.status(),
        200
    );
    let body = json!({"url": "https://hooks.example.com/2", "events": ["key.created"]});
    let response = app.post_json("/v1/webhook-endpoints", reader, &body).await;
    assert_problem(response, 403, "forbidden").await;
    let response = app
        .call(reqwest::Method::DELETE, &path, Some(reader), None)
        .await;
    assert_problem(response, 403, "forbidden").await;
    assert_eq!(
        app.call(reqwest::Method::DELETE, &path, Some(t), None)
            .await
            .status(),
        204
    );
    assert_problem(app.get_as(&path, t).await, 404, "not_found").await;
}

#[tokio::test]
async fn the_dashboard_makes_endpoints_shows_their_log_and_sends_test_events() {
    let world = TestApp::spawn_with(LOCAL_RECEIVERS)
        .await
        .with_space("acme")
        .await;
    let app = &world.app;
    let receiver = Receiver::start(&app.clock).await;
    let owner = Visitor::signed_in(app, "owner@acme.example.com").await;
    let fields = [
        ("url", receiver.url.as_str()),
        ("description", "billing"),
        ("events", "key.created"),
        ("events", "key.revoked"),
    ];
    // Post/Redirect/Get: the secret is on the page the form redirects to, once.
    let response = owner.submit("/webhooks", "/webhooks", &fields).await;
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(!response.text().await.unwrap().contains("whsec_"));
    let listed = app.get_ok("/v1/webhook-endpoints", world.token()).await;
    let id = s(&listed["data"][0], "id");
    assert_eq!(location, format!("/webhooks/{id}/secret"));
    let (status, shown) = owner.page(&location).await;
    assert_eq!(status, 200);
    let secret = shown_secret(&shown).expect("the secret is shown once");
    assert!(secret.starts_with("whsec_"), "{secret}");
    let (_, reloaded) = owner.page(&location).await;
    assert!(shown_secret(&reloaded).is_none() && reloaded.contains("shown once"));
    let (_, again) = owner.page("/webhooks").await;
    assert!(!again.contains(&secret) && again.contains(&receiver.url));
    assert_eq!(
        app.get_ok("/v1/webhook-endpoints", world.token()).await["data"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "a reload makes no other endpoint"
    );
    assert_eq!(
        listed["data"][0]["events"],
        json!(["key.created", "key.revoked"])
    );

    let response = owner
        .submit(
            &format!("/webhooks/{id}"),
            &format!("/webhooks/{id}/test"),
            &[],
        )
        .await;
    assert_eq!(response.status(), 303);
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    verify_with_standardwebhooks(&[&secret], &got);
    let entry = delivery_when(app, world.token(), &id, Newest, |e| {
        e["status"] == "succeeded"
    })
    .await;
    assert_eq!(entry["status"], "succeeded");
    let (status, detail) = owner.page(&format!("/webhooks/{id}")).await;
    assert_eq!(status, 200);
    assert!(
        detail.contains("webhook.test") && detail.contains("HTTP 200"),
        "{detail}"
    );

    // A new secret, shown once; the old one keeps signing beside it for the chosen overlap.
    let response = owner
        .submit(
            &format!("/webhooks/{id}"),
            &format!("/webhooks/{id}/secret"),
            &[("overlap_hours", "24")],
        )
        .await;
    assert_eq!(response.status(), 303);
    let (_, shown) = owner.page(&location).await;
    let rotated = shown_secret(&shown).expect("the new secret is shown once");
    assert!(rotated.starts_with("whsec_") && rotated != secret);
    assert!(shown.contains("the previous secret too"), "{shown}");
    let refused = owner
        .submit(
            &format!("/webhooks/{id}"),
            &format!("/webhooks/{id}/secret"),
            &[("overlap_hours", "-5")],
        )
        .await;
    assert_eq!(refused.status(), 422);
    owner
        .submit(
            &format!("/webhooks/{id}"),
            &format!("/webhooks/{id}/test"),
            &[],
        )
        .await;
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    verify_with_standardwebhooks(&[&rotated, &secret], &got[1..]);

    // Bad input is shown beside its field; a viewer may look but not change.
    let bad = [("url", receiver.url.as_str()), ("events", "key.exploded")];
    let refused = owner.submit("/webhooks", "/webhooks", &bad).await;
    assert_eq!(refused.status(), 422);
    assert!(refused.text().await.unwrap().contains("unknown event type"));
    crate::dashboard::support::add_member(
        app,
        &world.tenant.id,
        "viewer@acme.example.com",
        "viewer",
    )
    .await;
    let viewer = Visitor::signed_in(app, "viewer@acme.example.com").await;
    assert_eq!(viewer.page(&format!("/webhooks/{id}")).await.0, 200);
    let response = viewer
        .submit(
            &format!("/webhooks/{id}"),
            &format!("/webhooks/{id}/test"),
            &[],
        )
        .await;
    assert_eq!(response.status(), 403);

    // Deleting asks for confirmation, then removes the endpoint.
    let unconfirmed = owner
        .submit(
            &format!("/webhooks/{id}"),
            &format!("/webhooks/{id}/delete"),
            &[],
        )
        .await;
    assert_eq!(unconfirmed.status(), 422);
    assert_eq!(
        app.get_as(&format!("/v1/webhook-endpoints/{id}"), world.token())
            .await
            .status(),
        200
    );
    let response = owner
        .submit(
            &format!("/webhooks/{id}"),
            &format!("/webhooks/{id}/delete"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_problem(
        app.get_as(&format!("/v1/webhook-endpoints/{id}"), world.token())
            .await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn an_endpoint_failing_for_five_days_is_disabled_and_the_others_are_told() {
    let world = TestApp::spawn_with(LOCAL_RECEIVERS)
        .await
        .with_space("acme")
        .await;
    let (app, t) = (&world.app, world.token());
    let broken = Receiver::start(&app.clock).await;
    broken.script([Reply::Status(500); 10]);
    let watcher = Receiver::start(&app.clock).await;
    let (id, _) = endpoint(app, t, &broken.url, &["key.created"]).await;
    let (_, watcher_secret) = endpoint(app, t, &watcher.url, &["webhook_endpoint.disabled"]).await;
    world.create_key(|k| k).await;
    broken.wait_for(1, Duration::from_secs(10)).await;
    let entry = delivery_when(app, t, &id, Newest, |e| e["attempts"] == 1).await;
    assert_eq!(entry["status"], "pending");

    // Five days on, the next attempt fails too: past three days the delivery gives up, and past
    // five days of failures the endpoint is disabled.
    app.clock.advance(Duration::from_secs(5 * 24 * 3600 + 60));
    let told = watcher.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(told.len(), 1, "the other endpoint hears of it");
    assert_eq!(told[0].event_type(), "webhook_endpoint.disabled");
    assert_eq!(told[0].payload()["data"]["endpoint_id"], id.as_str());
    assert_eq!(told[0].payload()["data"]["source"], "system");
    let stamped = time(&told[0].payload()["timestamp"]) - Utc::now();
    assert!(
        stamped > TimeDelta::days(4),
        "stamped by the app's clock: {stamped}"
    );
    verify_with_standardwebhooks(&[&watcher_secret], &told);
    assert_eq!(broken.received().len(), 2);
    let shown = app.get_ok(&format!("/v1/webhook-endpoints/{id}"), t).await;
    assert_eq!(shown["enabled"], false);
    assert!(
        shown["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("5 days"),
        "{shown}"
    );
    let entry = delivery_when(app, t, &id, Newest, |e| e["status"] == "failed").await;
    assert_eq!(entry["status"], "failed", "{entry}");
    assert!(entry["next_attempt_at"].is_null());
    let audit = app.get_ok("/v1/audit-events?limit=100", t).await;
    assert!(audit.to_string().contains("webhook_endpoint.disable"));

    // Enabling it starts afresh.
    let path = format!("/v1/webhook-endpoints/{id}");
    let enabled = expect_json(
        app.patch_json(&path, t, &json!({"enabled": true})).await,
        200,
    )
    .await;
    assert!(enabled["disabled_reason"].is_null() && enabled["failing_since"].is_null());
}
