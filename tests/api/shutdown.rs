//! A node told to stop (SIGTERM) answers every request it has received and every request that
//! arrives on a connection still open, the latter with `Connection: close`, then exits. Clients
//! here loop on keep-alive connections, as a balancer's pool does, and write raw HTTP/1.1 so the
//! test sees exactly which requests were written and which were answered.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;

use crate::helpers::{Deployment, TestDatabase, backend, within};
use crate::nodes::Node;

/// What the looping clients saw, over all of them.
#[derive(Default)]
struct Tally {
    answered: AtomicUsize,
    /// Answers that told the client to close the connection (sent while draining).
    told_to_close: AtomicUsize,
    /// Requests written whole and never answered: must stay zero.
    unanswered: AtomicUsize,
    /// Connections refused: the node stopped listening (nothing was sent on them).
    refused: AtomicUsize,
}

/// One answer read whole; `None` if the connection ended first.
struct Answer {
    status: u16,
    close: bool,
}

fn read_answer(reader: &mut BufReader<TcpStream>) -> Option<Answer> {
    let mut line = String::new();
    reader.read_line(&mut line).ok().filter(|n| *n > 0)?;
    let status = line.split(' ').nth(1)?.parse().ok()?;
    let (mut length, mut close) = (0usize, false);
    loop {
        line.clear();
        reader.read_line(&mut line).ok().filter(|n| *n > 0)?;
        let header = line.trim_end().to_ascii_lowercase();
        if header.is_empty() {
            break;
        }
        if let Some(value) = header.strip_prefix("content-length:") {
            length = value.trim().parse().ok()?;
        }
        close |= header == "connection: close";
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Answer { status, close })
}

/// Verifies `key` on keep-alive connections until `stop`, reconnecting after each close.
fn loop_verifying(port: u16, token: &str, key: &str, stop: &AtomicBool, tally: &Tally) {
    let body = json!({ "key": key }).to_string();
    let request = format!(
        "POST /v1/keys/verify HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    while !stop.load(Ordering::Acquire) {
        let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) else {
            tally.refused.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        stream.set_read_timeout(Some(Duration::from_secs(20))).ok();
        let mut writer = stream.try_clone().expect("clone stream");
        let mut reader = BufReader::new(stream);
        while !stop.load(Ordering::Acquire) {
            if writer.write_all(request.as_bytes()).is_err() {
                // Not written whole: the server had closed the connection before it.
                break;
            }
            match read_answer(&mut reader) {
                Some(answer) => {
                    assert_eq!(answer.status, 200, "a verify answers 200");
                    tally.answered.fetch_add(1, Ordering::Relaxed);
                    if answer.close {
                        tally.told_to_close.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
                None => {
                    tally.unanswered.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_every_request_on_open_keep_alive_connections() {
    const CLIENTS: usize = 32;
    const ROUNDS: usize = 5;
    let db = TestDatabase::create(backend());
    let first = Node::start(&db.url(), None, &[]).await;
    let space = Deployment::over(&first, &db).space("drain").await;
    let created = first.create_key(&space, |k| k).await;
    let (token, key) = (space.token().to_owned(), created.key.clone());
    drop(first);

    for round in 1..=ROUNDS {
        let mut node = Node::start(&db.url(), None, &[]).await;
        let (stop, tally) = (Arc::new(AtomicBool::new(false)), Arc::new(Tally::default()));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (stop, tally) = (stop.clone(), tally.clone());
                let (token, key, port) = (token.clone(), key.clone(), node.port);
                std::thread::spawn(move || loop_verifying(port, &token, &key, &stop, &tally))
            })
            .collect();
        // Under load, every client on an open connection, then the signal.
        while tally.answered.load(Ordering::Relaxed) < 20 * CLIENTS {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let status = node.terminate(Duration::from_secs(15)).await;
        stop.store(true, Ordering::Release);
        for client in clients {
            client.join().expect("client thread");
        }
        let (answered, closed, unanswered, refused) = (
            tally.answered.load(Ordering::Relaxed),
            tally.told_to_close.load(Ordering::Relaxed),
            tally.unanswered.load(Ordering::Relaxed),
            tally.refused.load(Ordering::Relaxed),
        );
        eprintln!(
            "round {round}: {answered} answered ({closed} with Connection: close), \
             {unanswered} unanswered, {refused} connections refused"
        );
        assert!(status.success(), "a graceful stop exits 0, got {status}");
        assert_eq!(unanswered, 0, "requests written and never answered");
        assert!(
            closed >= CLIENTS,
            "each client's open connection ends with an answer saying Connection: close"
        );
        assert!(
            node.log_text()
                .contains("shutting down: draining connections"),
            "{}",
            node.log_tail(10)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_the_shutdown_delay_readiness_fails_and_new_connections_are_still_served() {
    let db = TestDatabase::create(backend());
    let delay = [("LATCHKEY_SHUTDOWN_DELAY_SECONDS", "1")];
    let mut node = Node::start(&db.url(), None, &delay).await;
    node.send_terminate();
    let draining = within(Duration::from_secs(1), || async {
        let (status, body) = node.readyz().await;
        status == 503 && body["status"] == "draining"
    })
    .await;
    assert!(draining.is_some(), "readyz: {:?}", node.readyz().await);
    // Still listening: a balancer that has not polled readiness yet is not refused.
    let fresh = reqwest::Client::builder().build().expect("client");
    let healthz = fresh
        .get(node.url("/healthz"))
        .send()
        .await
        .expect("served");
    assert_eq!(healthz.status(), 200);
    assert!(
        healthz
            .headers()
            .get("connection")
            .is_none_or(|v| v != "close"),
        "connections are closed only once the node stops listening"
    );
    let mut status = None;
    within(Duration::from_secs(15), || {
        status = node.exit_status();
        let exited = status.is_some();
        async move { exited }
    })
    .await;
    let status = status.expect("the node stops after the delay");
    assert!(status.success(), "a graceful stop exits 0, got {status}");
    let refused = TcpStream::connect(("127.0.0.1", node.port));
    assert!(refused.is_err(), "nothing listens once it stopped");
}
