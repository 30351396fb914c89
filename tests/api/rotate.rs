//! `POST /v1/keys/{id}/rotate`: a new key with the same configuration, a grace period for the
//! old one, rotation families and reuse detection.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{TestApp, TestKey, assert_no_secret, assert_problem, expect_json, s};

#[tokio::test]
async fn rotation_keeps_the_configuration_and_the_old_key_works_during_the_grace() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let old = world
        .create_key(|k| {
            k.name("svc")
                .owner("alice")
                .scopes(["documents:read"])
                .meta(json!({"plan": "pro"}))
                .expires_in(86400)
                .ip_allowlist(["10.0.0.0/8"])
                .ratelimit(100, 60)
                .credits(50)
        })
        .await;
    let (app, t) = (&world.app, world.token());
    let (old_id, old_key) = (&old.id, &old.key);
    let response = app
        .post_json(
            &format!("/v1/keys/{old_id}/rotate"),
            t,
            &json!({"grace_period_seconds": 5}),
        )
        .await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let rotated = expect_json(response, 201).await;
    let (new_id, new_key) = (s(&rotated, "id"), s(&rotated, "key"));
    assert_ne!(&new_id, old_id);
    assert_ne!(&new_key, old_key);
    assert!(new_key.starts_with("acme_live_"));
    for field in [
        "name",
        "owner_id",
        "scopes",
        "meta",
        "ip_allowlist",
        "ratelimit",
        "keyspace_id",
        "expires_at",
        "enabled",
    ] {
        assert_eq!(rotated[field], old[field], "{field} carried over");
    }
    assert_eq!(rotated["credits"]["remaining"], 50);
    assert_eq!(rotated["rotated_from"], old_id.as_str());
    assert_eq!(
        rotated["family_id"],
        old_id.as_str(),
        "the family is named after its first key"
    );
    assert_eq!(rotated["previous_key"]["id"], old_id.as_str());
    let grace_end =
        chrono::DateTime::parse_from_rfc3339(&s(&rotated["previous_key"], "expires_at")).unwrap();
    assert!((grace_end.to_utc() - chrono::Utc::now()).num_milliseconds() <= 5_000);

    let read_old = app.get_key(t, old_id).await;
    assert_eq!(
        read_old["expires_at"],
        rotated["previous_key"]["expires_at"]
    );
    assert_no_secret(&read_old, &new_key);
    let with_ip = |key: &str| json!({"key": key, "ip": "10.0.0.1"});
    assert_eq!(app.verify_with(t, with_ip(&new_key)).await["code"], "VALID");
    assert_eq!(
        app.verify_with(t, with_ip(old_key)).await["code"],
        "VALID",
        "old key works during the grace"
    );
    // The app's clock passes the grace's end; nothing waits for it.
    app.clock.advance(Duration::from_secs(6));
    assert_eq!(
        app.verify_with(t, with_ip(old_key)).await["code"],
        "EXPIRED",
        "the old key expires at the end of the grace"
    );
    assert_eq!(app.verify_with(t, with_ip(&new_key)).await["code"], "VALID");
    assert_eq!(app.get_key(t, old_id).await["status"], "expired");

    // The rotation is audited on the old key, the new key's creation on the new one.
    let rotate = app.audit(t, "action=key.rotate").await;
    assert_eq!(rotate.len(), 1);
    assert_eq!(rotate[0]["target"]["id"], old_id.as_str());
    assert_eq!(rotate[0]["changes"]["new_key_id"], new_id.as_str());
    assert_eq!(rotate[0]["changes"]["grace_period_seconds"], 5);
    let created = app
        .audit(t, &format!("action=key.create&target={new_id}"))
        .await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["changes"]["rotated_from"], old_id.as_str());
}

#[tokio::test]
async fn grace_zero_expires_the_old_key_at_once_and_families_chain() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let first = world.create_key(|k| k).await;
    let (app, t) = (&world.app, world.token());
    let first_id = &first.id;
    // No body at all means grace 0.
    let response = app
        .client
        .post(app.url(&format!("/v1/keys/{first_id}/rotate")))
        .bearer_auth(t)
        .send()
        .await
        .unwrap();
    let second = TestKey::created(expect_json(response, 201).await);
    assert_eq!(app.verify_code(t, &first.key).await, "EXPIRED");
    assert_eq!(app.verify_code(t, &second.key).await, "VALID");
    let third = app.rotate(t, &second.id, 0).await;
    assert_eq!(third["family_id"], first_id.as_str());
    assert_eq!(third["rotated_from"], second.id.as_str());
    assert_eq!(app.verify_code(t, &second.key).await, "EXPIRED");
    assert_eq!(app.verify_code(t, &third.key).await, "VALID");
    // An expired key cannot be rotated.
    assert_problem(
        app.post_json(&format!("/v1/keys/{first_id}/rotate"), t, &json!({}))
            .await,
        409,
        "key_expired",
    )
    .await;
}

#[tokio::test]
async fn a_key_rotates_once() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let key = world.create_key(|k| k).await;
    let (app, t) = (&world.app, world.token());
    let path = format!("/v1/keys/{}/rotate", key.id);
    app.rotate(t, &key.id, 3600).await;
    assert_problem(
        app.post_json(&path, t, &json!({"grace_period_seconds": 3600}))
            .await,
        409,
        "key_already_rotated",
    )
    .await;
    let list = app.get_ok("/v1/keys", t).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2, "no third key");
    for grace in [json!(-1), json!(2_592_001)] {
        let response = app
            .post_json(&path, t, &json!({"grace_period_seconds": grace}))
            .await;
        assert_problem(response, 422, "validation_failed").await;
    }
    assert_problem(
        app.post_json(
            "/v1/keys/019a5f0e-7c1d-7b2a-9d4e-3f2a1b0c9d8e/rotate",
            t,
            &json!({}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn rotating_a_revoked_key_revokes_its_whole_family() {
    let world = TestApp::spawn().await.with_space("acme").await;
    let first = world.create_key(|k| k).await;
    let (app, t) = (&world.app, world.token());
    let first_id = &first.id;
    let second = app.rotate(t, first_id, 3600).await;
    let third = app.rotate(t, &second.id, 3600).await;
    let bystander = world.create_key(|k| k).await;
    // The first key leaks and is revoked; then someone tries to rotate it.
    expect_json(
        app.post_json(
            &format!("/v1/keys/{first_id}/revoke"),
            t,
            &json!({"reason": "leaked"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(app.verify_code(t, &second.key).await, "VALID");
    let problem = assert_problem(
        app.post_json(&format!("/v1/keys/{first_id}/rotate"), t, &json!({}))
            .await,
        409,
        "key_revoked_reuse_detected",
    )
    .await;
    assert!(problem["detail"].as_str().unwrap().contains("revoked"));
    for key in [&first, &second, &third] {
        assert_eq!(app.verify_code(t, &key.key).await, "REVOKED");
        assert_eq!(app.get_key(t, &key.id).await["status"], "revoked");
    }
    assert_eq!(
        app.get_key(t, first_id).await["revoked_reason"],
        "leaked",
        "the first revocation's reason stays"
    );
    assert_eq!(
        app.get_key(t, &third.id).await["revoked_reason"],
        "rotation_reuse_detected"
    );
    assert_eq!(
        app.verify_code(t, &bystander.key).await,
        "VALID",
        "other families are untouched"
    );
    let list = app.get_ok("/v1/keys", t).await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        4,
        "no new key was issued"
    );
    let events = app.audit(t, "action=key.family_revoke").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["target"]["id"], first_id.as_str());
    assert_eq!(events[0]["changes"]["family_id"], first_id.as_str());
    let mut revoked: Vec<String> = events[0]["changes"]["revoked_key_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    revoked.sort();
    let mut expected = vec![second.id, third.id];
    expected.sort();
    assert_eq!(revoked, expected);
}

/// Parallel rotations of one key: one successor, whatever the backend's isolation level. Before
/// the unique index, PostgreSQL answered two or three 201s and every successor verified.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_rotations_of_one_key_make_one_successor() {
    let app = TestApp::spawn().await;
    let space = app.space("acme").await;
    let t = space.token();
    for _ in 0..5 {
        let old = app.create_key(&space, |k| k).await;
        let path = format!("/v1/keys/{}/rotate", old.id);
        let body = json!({"grace_period_seconds": 3600});
        let answers = futures_util::future::join_all(
            (0..4).map(|_| async { app.post_json(&path, t, &body).await }),
        )
        .await;
        let mut statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
        statuses.sort_unstable();
        assert_eq!(statuses, vec![201, 409, 409, 409], "one rotation wins");
        for answer in answers.into_iter().filter(|r| r.status() == 409) {
            assert_problem(answer, 409, "key_already_rotated").await;
        }
        let family = app.get_ok("/v1/keys?limit=100", t).await;
        let successors = family["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["rotated_from"] == old.id.as_str())
            .count();
        assert_eq!(successors, 1, "{family}");
    }
}

/// A family revocation racing a rotation of its newest key never leaves a successor alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_family_revocation_racing_a_rotation_leaves_no_live_successor() {
    let app = TestApp::spawn().await;
    let space = app.space("acme").await;
    let t = space.token();
    for _ in 0..5 {
        let first = app.create_key(&space, |k| k).await;
        let first_id = first.id.clone();
        let second = expect_json(
            app.post_json(
                &format!("/v1/keys/{first_id}/rotate"),
                t,
                &json!({"grace_period_seconds": 3600}),
            )
            .await,
            201,
        )
        .await;
        expect_json(
            app.post_json(&format!("/v1/keys/{first_id}/revoke"), t, &json!({}))
                .await,
            200,
        )
        .await;
        // Reuse of the revoked first key revokes the family while the second key rotates.
        let (reuse_path, rotate_path) = (
            format!("/v1/keys/{first_id}/rotate"),
            format!("/v1/keys/{}/rotate", s(&second, "id")),
        );
        let (empty, grace) = (json!({}), json!({"grace_period_seconds": 3600}));
        let reuse = app.post_json(&reuse_path, t, &empty);
        let rotate = app.post_json(&rotate_path, t, &grace);
        let (reuse, rotate) = futures_util::future::join(reuse, rotate).await;
        assert_eq!(reuse.status(), 409);
        if rotate.status() == 201 {
            let third: serde_json::Value = rotate.json().await.unwrap();
            assert_eq!(
                app.verify_code(t, &s(&third, "key")).await,
                "REVOKED",
                "a successor made during the family's revocation is revoked with it"
            );
        }
        assert_eq!(app.verify_code(t, &s(&second, "key")).await, "REVOKED");
    }
}
