//! `POST /v1/keys/verify`: every code of DESIGN §5, in order, and the fields of a valid answer.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{TestApp, TestKey, assert_problem, expect_json, s};

#[tokio::test]
async fn a_valid_answer_carries_what_the_service_needs() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let created = world
        .create_key(|k| {
            k.name("svc")
                .owner("customer_42")
                .scopes(["documents:read"])
                .meta(json!({"plan": "pro"}))
                .expires_in(3600)
        })
        .await;
    let (app, space) = (&world.app, world.space());
    let key = &created.key;
    let response = app
        .post_json("/v1/keys/verify", space.token(), &json!({"key": key}))
        .await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let answer = expect_json(response, 200).await;
    assert_eq!(answer["valid"], true);
    assert_eq!(answer["code"], "VALID");
    assert_eq!(answer["key_id"], created["id"]);
    assert_eq!(answer["keyspace_id"], space.keyspace_id.as_str());
    assert_eq!(answer["owner_id"], "customer_42");
    assert_eq!(answer["name"], "svc");
    assert_eq!(answer["scopes"], json!(["documents:read"]));
    assert_eq!(answer["meta"], json!({"plan": "pro"}));
    assert_eq!(answer["expires_at"], created["expires_at"]);
    assert!(
        !answer.to_string().contains(key.as_str()),
        "the answer never echoes the key"
    );

    // Restricted to the right keyspace: fine; to another one (or an unknown id): NOT_FOUND.
    let ok = app
        .verify_with(
            space.token(),
            json!({"key": key, "keyspace_id": space.keyspace_id}),
        )
        .await;
    assert_eq!(ok["code"], "VALID");
    let other_ks = s(&app.create_keyspace(space.token(), "acme_test").await, "id");
    for ks in [
        other_ks.as_str(),
        "019a5f0e-7c1d-7b2a-9d4e-3f2a1b0c9d8e",
        "junk",
    ] {
        let answer = app
            .verify_with(space.token(), json!({"key": key, "keyspace_id": ks}))
            .await;
        assert_eq!(answer, json!({"valid": false, "code": "NOT_FOUND"}), "{ks}");
    }

    // A refusal names the key but carries none of its details.
    let id = &created.id;
    app.patch_key(space.token(), id, json!({"enabled": false}))
        .await;
    assert_eq!(
        app.verify(space.token(), key).await,
        json!({"valid": false, "code": "DISABLED", "key_id": id,
            "keyspace_id": space.keyspace_id, "owner_id": "customer_42",
            "expires_at": created["expires_at"]})
    );
}

#[tokio::test]
async fn refusals_follow_the_documented_order() {
    // A key that fails every check at once answers the first failing one; fixing each in turn
    // reveals the next.
    let window = 86_400;
    let world = TestApp::spawn().await.with_space("acme").await;
    let created = world
        .create_key(|k| {
            k.scopes(["documents:read"])
                .ip_allowlist(["10.0.0.0/8"])
                .ratelimit(1, window)
                .credits(0)
        })
        .await;
    let (app, t) = (&world.app, world.token());
    let TestKey { id, key, .. } = &created;
    let body = json!({"key": key, "scopes": ["documents:write"], "ip": "192.0.2.1"});
    app.patch_key(t, id, json!({"enabled": false})).await;
    app.expire_key_in_store(id);
    assert_eq!(app.verify_with(t, body.clone()).await["code"], "DISABLED");
    app.patch_key(t, id, json!({"enabled": true})).await;
    assert_eq!(app.verify_with(t, body.clone()).await["code"], "EXPIRED");
    app.patch_key(t, id, json!({"expires_at": null})).await;
    assert_eq!(
        app.verify_with(t, body.clone()).await["code"],
        "IP_NOT_ALLOWED"
    );
    let body = json!({"key": key, "scopes": ["documents:write"], "ip": "10.1.2.3"});
    let answer = app.verify_with(t, body).await;
    assert_eq!(answer["code"], "INSUFFICIENT_SCOPE");
    assert_eq!(answer["valid"], false);
    let body = json!({"key": key, "scopes": ["documents:read"], "ip": "10.1.2.3"});
    let answer = app.verify_with(t, body.clone()).await;
    assert_eq!(
        answer["code"], "USAGE_EXCEEDED",
        "the one request of the window passed the rate limit"
    );
    assert_eq!(answer["credits_remaining"], 0);
    // The counters' refusals name the key and their counter, and carry none of its scopes.
    let fields = |answer: &serde_json::Value| {
        let mut names: Vec<String> = answer.as_object().unwrap().keys().cloned().collect();
        names.sort_unstable();
        names
    };
    assert_eq!(
        fields(&answer),
        [
            "code",
            "credits_remaining",
            "key_id",
            "keyspace_id",
            "ratelimit",
            "valid"
        ]
    );
    let answer = app.verify_with(t, body.clone()).await;
    assert_eq!(answer["code"], "RATE_LIMITED");
    assert_eq!(
        fields(&answer),
        ["code", "key_id", "keyspace_id", "ratelimit", "valid"]
    );

    // Revoked beats everything but NOT_FOUND.
    app.revoke(t, id).await;
    assert_eq!(app.verify_with(t, body.clone()).await["code"], "REVOKED");
    let other_ks = s(&app.create_keyspace(t, "acme_test").await, "id");
    let mut restricted = body.clone();
    restricted["keyspace_id"] = json!(other_ks);
    assert_eq!(app.verify_with(t, restricted).await["code"], "NOT_FOUND");
    let b = app.tenant("bravo").await;
    assert_eq!(
        app.verify_with(&b.root_key, body).await,
        json!({"valid": false, "code": "NOT_FOUND"})
    );
}

#[tokio::test]
async fn ip_allowlists_accept_v4_and_v6_cidrs() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let created = world
        .create_key(|k| k.ip_allowlist(["2001:db8:abcd::/48", "198.51.100.7"]))
        .await;
    let (app, space, key) = (&world.app, world.space(), &created.key);
    let code = |ip: Option<&str>| {
        let body = match ip {
            Some(ip) => json!({"key": key, "ip": ip}),
            None => json!({"key": key}),
        };
        let app = &app;
        let t = space.token().to_owned();
        async move {
            app.verify_with(&t, body).await["code"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    assert_eq!(code(Some("2001:db8:abcd:12::1")).await, "VALID");
    assert_eq!(code(Some("2001:db8:abce::1")).await, "IP_NOT_ALLOWED");
    assert_eq!(code(Some("198.51.100.7")).await, "VALID");
    assert_eq!(code(Some("::ffff:198.51.100.7")).await, "VALID");
    assert_eq!(code(Some("198.51.100.8")).await, "IP_NOT_ALLOWED");
    assert_eq!(
        code(None).await,
        "IP_NOT_ALLOWED",
        "no ip given, allowlist set"
    );
    let problem = assert_problem(
        app.post_json(
            "/v1/keys/verify",
            space.token(),
            &json!({"key": key, "ip": "10.0.0.0/8"}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "ip");
}

#[tokio::test]
async fn scopes_must_all_be_granted_with_held_wildcards() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let created = world
        .create_key(|k| k.scopes(["documents:*", "*:read"]))
        .await;
    let (app, space, key) = (&world.app, world.space(), &created.key);
    let code = |scopes: serde_json::Value| {
        let app = &app;
        let body = json!({"key": key, "scopes": scopes});
        let t = space.token().to_owned();
        async move {
            app.verify_with(&t, body).await["code"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    assert_eq!(code(json!([])).await, "VALID");
    assert_eq!(
        code(json!(["documents:read", "documents:delete"])).await,
        "VALID"
    );
    assert_eq!(code(json!(["billing:read"])).await, "VALID");
    assert_eq!(code(json!(["billing:write"])).await, "INSUFFICIENT_SCOPE");
    assert_eq!(
        code(json!(["documents:read", "billing:write"])).await,
        "INSUFFICIENT_SCOPE"
    );
    assert_eq!(
        code(json!(["billing:*"])).await,
        "INSUFFICIENT_SCOPE",
        "a required wildcard needs a held one"
    );
    assert_eq!(code(json!(["documents:*"])).await, "VALID");
    let no_scopes = world.create_key(|k| k).await.key;
    let answer = app
        .verify_with(
            space.token(),
            json!({"key": no_scopes, "scopes": ["documents:read"]}),
        )
        .await;
    assert_eq!(
        answer["code"], "INSUFFICIENT_SCOPE",
        "an empty scope list grants nothing"
    );
    assert_problem(
        app.post_json(
            "/v1/keys/verify",
            space.token(),
            &json!({"key": key, "scopes": ["Bad"]}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn rate_limits_answer_their_state_and_slide() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let created = world.create_key(|k| k.ratelimit(3, 60)).await;
    let (app, space, key) = (&world.app, world.space(), &created.key);
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let answer = app.verify(space.token(), key).await;
        assert_eq!(answer["code"], "VALID");
        assert_eq!(answer["ratelimit"]["limit"], 3);
        remaining.push(answer["ratelimit"]["remaining"].as_i64().unwrap());
    }
    assert_eq!(remaining, vec![2, 1, 0]);
    let limited = app.verify(space.token(), key).await;
    assert_eq!(limited["valid"], false);
    assert_eq!(limited["code"], "RATE_LIMITED");
    assert_eq!(limited["ratelimit"]["limit"], 3);
    assert_eq!(limited["ratelimit"]["remaining"], 0);
    let reset = chrono::DateTime::parse_from_rfc3339(&s(&limited["ratelimit"], "reset_at"))
        .unwrap()
        .to_utc();
    let now = world.app.clock.now().and_utc();
    assert!(
        reset > now + chrono::TimeDelta::seconds(59)
            && reset <= now + chrono::TimeDelta::seconds(61),
        "free again one window (and at most a bucket) after the first: {reset} at {now}"
    );
    // Keys are limited independently.
    let other = world.create_key(|k| k.ratelimit(3, 60)).await.key;
    assert_eq!(app.verify_code(space.token(), &other).await, "VALID");
    // Half a window later it is still full: the window slides, it does not restart.
    world.app.clock.advance(Duration::from_secs(30));
    assert_eq!(app.verify_code(space.token(), key).await, "RATE_LIMITED");
    world.app.clock.advance(Duration::from_secs(31));
    assert_eq!(app.verify_code(space.token(), key).await, "VALID");
}

#[tokio::test]
async fn credits_refill_at_the_first_verification_of_a_new_period() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let created = world
        .create_key(|k| k.refilled_credits(2, 5, "daily"))
        .await;
    let (app, space) = (&world.app, world.space());
    let TestKey { id, key, .. } = &created;
    let charge = |cost: i64| {
        let (app, t) = (&app, space.token().to_owned());
        let body = json!({"key": key, "cost": cost});
        async move {
            let a = app.verify_with(&t, body).await;
            (
                a["code"].as_str().unwrap_or_default().to_owned(),
                a["credits_remaining"].as_i64(),
            )
        }
    };
    let remaining =
        || async { app.get_key(space.token(), id).await["credits"]["remaining"].clone() };
    // The period's refill counts as done at creation: the first balance is spent first.
    assert_eq!(charge(2).await, ("VALID".into(), Some(0)));
    assert_eq!(charge(1).await, ("USAGE_EXCEEDED".into(), Some(0)));

    // A new day: its first verification resets the balance to the amount, then charges it.
    app.end_refill_period_in_store(id);
    assert_eq!(charge(1).await, ("VALID".into(), Some(4)));
    // Later verifications the same day do not refill again.
    assert_eq!(charge(3).await, ("VALID".into(), Some(1)));
    assert_eq!(remaining().await, 1);

    // A first verification of a day that costs more than the refill is refused, and the day's
    // refill still happened.
    app.end_refill_period_in_store(id);
    assert_eq!(charge(6).await, ("USAGE_EXCEEDED".into(), Some(5)));
    assert_eq!(remaining().await, 5);
    assert_eq!(charge(5).await, ("VALID".into(), Some(0)));

    // The amount refilled is the stored one, even while the node still caches an older plan.
    app.set_refill_amount_in_store(id, 8);
    app.end_refill_period_in_store(id);
    assert_eq!(charge(1).await, ("VALID".into(), Some(7)));
}

#[tokio::test]
async fn credits_are_charged_by_cost_and_never_go_below_zero() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let created = world.create_key(|k| k.credits(5)).await;
    let (app, space) = (&world.app, world.space());
    let key = &created.key;
    let charge = |cost: Option<i64>| {
        let body = match cost {
            Some(cost) => json!({"key": key, "cost": cost}),
            None => json!({"key": key}),
        };
        let app = &app;
        let t = space.token().to_owned();
        async move { app.verify_with(&t, body).await }
    };
    let a = charge(None).await;
    assert_eq!(
        (a["code"].as_str(), a["credits_remaining"].as_i64()),
        (Some("VALID"), Some(4))
    );
    let a = charge(Some(3)).await;
    assert_eq!(a["credits_remaining"], 1);
    // Refused, and the answer says what is left: not enough for this cost, but not nothing.
    let a = charge(Some(2)).await;
    assert_eq!(a["code"], "USAGE_EXCEEDED");
    assert_eq!(a["valid"], false);
    assert_eq!(a["credits_remaining"], 1);
    let a = charge(Some(0)).await;
    assert_eq!(
        (a["code"].as_str(), a["credits_remaining"].as_i64()),
        (Some("VALID"), Some(1))
    );
    let a = charge(Some(1)).await;
    assert_eq!(a["credits_remaining"], 0);
    assert_eq!(charge(None).await["code"], "USAGE_EXCEEDED");
    assert_eq!(
        app.get_key(space.token(), &created.id).await["credits"]["remaining"],
        0
    );
    for cost in [-1, 1_000_001] {
        let response = app
            .post_json(
                "/v1/keys/verify",
                space.token(),
                &json!({"key": key, "cost": cost}),
            )
            .await;
        assert_problem(response, 422, "validation_failed").await;
    }
    // A key without credits is unlimited and answers no balance.
    let unlimited = world.create_key(|k| k).await.key;
    let answer = app
        .verify_with(space.token(), json!({"key": unlimited, "cost": 1000}))
        .await;
    assert_eq!(answer["code"], "VALID");
    assert!(answer.get("credits_remaining").is_none() || answer["credits_remaining"].is_null());
}

#[tokio::test]
async fn expired_and_revoked_keys_are_refused() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let (app, space) = (&world.app, world.space());
    let expiring = world.create_key(|k| k).await;
    app.expire_key_in_store(&expiring.id);
    let answer = app.verify(space.token(), &expiring.key).await;
    assert_eq!(answer["code"], "EXPIRED");
    assert_eq!(answer["valid"], false);
    assert!(answer.get("meta").is_none(), "refusals carry no metadata");
    let revoked = world.create_key(|k| k).await;
    app.revoke(space.token(), &revoked.id).await;
    assert_eq!(
        app.verify_code(space.token(), &revoked.key).await,
        "REVOKED"
    );
}

#[tokio::test]
async fn a_key_in_the_url_is_never_read() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let created = world.create_key(|k| k).await;
    let (app, space, key) = (&world.app, world.space(), &created.key);
    // The key in the query and an empty body: the body is what counts.
    let response = app
        .client
        .post(app.url(&format!("/v1/keys/verify?key={key}")))
        .bearer_auth(space.token())
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(response, 422, "invalid_body").await;
    assert!(!problem.to_string().contains(key.as_str()));
    let response = app
        .client
        .post(app.url(&format!("/v1/keys/verify?key={key}")))
        .bearer_auth(space.token())
        .json(&json!({"key": "acme_live_nothing"}))
        .send()
        .await
        .unwrap();
    assert_eq!(expect_json(response, 200).await["code"], "NOT_FOUND");
    // A root key in the query string never authenticates.
    let response = app
        .client
        .post(app.url(&format!("/v1/keys/verify?access_token={}", space.token())))
        .json(&json!({"key": key}))
        .send()
        .await
        .unwrap();
    assert_problem(response, 401, "unauthorized").await;
}

#[tokio::test]
async fn concurrent_verifications_never_overspend_credits() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let created = world.create_key(|k| k.credits(10)).await;
    let (app, space, key) = (&world.app, world.space(), &created.key);
    let answers = futures_util::future::join_all(
        (0..25).map(|_| app.verify_with(space.token(), json!({"key": key}))),
    )
    .await;
    let valid = answers.iter().filter(|a| a["code"] == "VALID").count();
    let exceeded = answers
        .iter()
        .filter(|a| a["code"] == "USAGE_EXCEEDED")
        .count();
    assert_eq!((valid, exceeded), (10, 15));
    let mut remaining: Vec<i64> = answers
        .iter()
        .filter(|a| a["code"] == "VALID")
        .map(|a| a["credits_remaining"].as_i64().unwrap())
        .collect();
    remaining.sort();
    assert_eq!(
        remaining,
        (0..10).collect::<Vec<i64>>(),
        "each credit was taken once"
    );
}
