//! The webhook delivery worker, one per node: claims due deliveries from the outbox (a lease, so
//! a node that dies mid-delivery loses nothing: its claims run out and another node sends
//! them), signs them (Standard Webhooks), POSTs them under the outbound rules, and records the
//! outcome and the next attempt.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, TimeDelta};
use serde_json::json;
use tokio::sync::Notify;

use super::{Change, Event, Subject};
use crate::audit::{Actor, AuditContext};
use crate::domain::ids::{TenantId, WebhookEndpointId};
use crate::domain::time::Clock;
use crate::domain::webhook::{
    DISABLE_AFTER, EndpointUrl, OutboundPolicy, WebhookSecret, next_attempt, signature_header,
};
use crate::store::models::{WebhookDeliveryRow, WebhookEndpointChanges, WebhookEndpointRow};
use crate::store::webhooks::{self, AttemptRecord};
use crate::store::{Store, StoreError};
use crate::tokens::signing::KeyCipher;

/// One attempt may take this long, connecting included.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// At most this much of a receiver's answer is read (and then dropped).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// How often an idle worker looks for due deliveries written by other nodes (or come due).
const POLL: Duration = Duration::from_secs(1);
/// Deliveries one worker claims at once (and sends concurrently).
const BATCH: i32 = 16;

/// The associated data that binds an endpoint's sealed secret to its row.
pub fn secret_aad(endpoint_id: &str) -> Vec<u8> {
    format!("latchkey-webhook-secret:{endpoint_id}").into_bytes()
}

/// The secrets that sign for `endpoint` at `now`: its current one, and a rotated-out one during
/// the overlap.
pub fn live_secrets(
    cipher: &KeyCipher,
    endpoint: &WebhookEndpointRow,
    now: NaiveDateTime,
) -> Option<Vec<WebhookSecret>> {
    let aad = secret_aad(&endpoint.id);
    let mut secrets = vec![WebhookSecret::from_bytes(
        cipher.open(&aad, &endpoint.secret_sealed)?,
    )];
    if let (Some(sealed), Some(until)) = (
        &endpoint.previous_secret_sealed,
        endpoint.previous_secret_until,
    ) && until > now
        && let Some(previous) = cipher.open(&aad, sealed)
    {
        secrets.push(WebhookSecret::from_bytes(previous));
    }
    Some(secrets)
}

/// Sends webhook deliveries. Cheap to share; [`Deliverer::run`] is its loop.
pub struct Deliverer {
    store: Store,
    cipher: KeyCipher,
    clock: Clock,
    policy: OutboundPolicy,
    client: reqwest::Client,
    lease: Duration,
    wake: Arc<Notify>,
}

impl Deliverer {
    pub fn new(
        store: Store,
        cipher: KeyCipher,
        clock: Clock,
        policy: OutboundPolicy,
        lease: Duration,
        wake: Arc<Notify>,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            // A proxy from the environment would connect for us, past the address check.
            .no_proxy()
            .dns_resolver(Arc::new(CheckedResolver(policy)))
            .user_agent(concat!("latchkey-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            store,
            cipher,
            clock,
            policy,
            client,
            lease,
            wake,
        })
    }

    /// Delivers until the task is aborted: whatever is due, then waits for a nudge (a commit on
    /// this node) or the next poll.
    pub async fn run(self: Arc<Self>) {
        loop {
            match self.deliver_due().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "webhook deliveries: store failed"),
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Claims one batch of due deliveries and sends them; answers how many it claimed.
    pub async fn deliver_due(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let lease_until = now + TimeDelta::from_std(self.lease).unwrap_or(TimeDelta::seconds(60));
        let claimed = self
            .store
            .transaction(move |conn| webhooks::claim_due(conn, now, lease_until, BATCH))
            .await?;
        let n = claimed.len();
        // Endpoints are sent to side by side; one endpoint's deliveries one after another, in
        // the order their events happened (a key's `created` before its `revoked`).
        let mut by_endpoint: Vec<Vec<WebhookDeliveryRow>> = Vec::new();
        for delivery in claimed {
            match by_endpoint
                .iter_mut()
                .find(|group| group[0].endpoint_id == delivery.endpoint_id)
            {
                Some(group) => group.push(delivery),
                None => by_endpoint.push(vec![delivery]),
            }
        }
        let sends = by_endpoint.into_iter().map(|group| async move {
            for delivery in group {
                if let Err(err) = self.deliver(delivery, lease_until).await {
                    tracing::warn!(error = %err, "webhook delivery: recording the outcome failed");
                }
            }
        });
        futures_util::future::join_all(sends).await;
        Ok(n)
    }

    async fn deliver(
        &self,
        delivery: WebhookDeliveryRow,
        lease: NaiveDateTime,
    ) -> Result<(), StoreError> {
        let tenant = TenantId::from_trusted(delivery.tenant_id.clone());
        let endpoint = {
            let (tenant, id) = (tenant.clone(), delivery.endpoint_id.clone());
            self.store
                .run(move |conn| webhooks::find_endpoint(conn, &tenant, &id))
                .await?
        };
        let Some(endpoint) = endpoint else {
            return Ok(()); // deleted meanwhile: its deliveries went with it
        };
        let started = Instant::now();
        let outcome = self.send(&endpoint, &delivery).await;
        let latency_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        let at = self.clock.now();
        let (status_code, error) = match &outcome {
            Ok(code) if (200..300).contains(code) => (Some(i32::from(*code)), None),
            Ok(code) => (
                Some(i32::from(*code)),
                Some(format!("answered HTTP {code}")),
            ),
            Err(why) => (None, Some(why.clone())),
        };
        let failed = error.is_some();
        let retry = failed.then(|| {
            next_attempt(
                delivery.created_at,
                at,
                u32::try_from(delivery.attempts + 1).unwrap_or(u32::MAX),
                rand::random::<f64>(),
            )
        });
        tracing::info!(
            delivery = %delivery.id,
            endpoint = %endpoint.id,
            event = %delivery.event_type,
            attempt = delivery.attempts + 1,
            status = ?status_code,
            latency_ms,
            error = error.as_deref().unwrap_or(""),
            "webhook delivery attempted"
        );
        let (id, clock) = (delivery.id.clone(), self.clock.clone());
        self.store
            .transaction(move |conn| {
                let attempt = AttemptRecord {
                    at,
                    status_code,
                    latency_ms,
                    error: error.as_deref(),
                    retry,
                };
                if !webhooks::record_attempt(conn, &id, lease, &attempt)? {
                    return Ok(()); // the claim ran out and another node took over
                }
                if !failed {
                    return webhooks::note_success(conn, &tenant, &endpoint.id);
                }
                let since = webhooks::note_failure(conn, &tenant, &endpoint.id, at)?;
                if since.is_some_and(|since| at - since >= DISABLE_AFTER) {
                    disable(conn, &clock, &tenant, &endpoint.id, at)?;
                }
                Ok::<_, StoreError>(())
            })
            .await
    }

    /// POSTs one delivery; the HTTP status, or why there was none.
    async fn send(
        &self,
        endpoint: &WebhookEndpointRow,
        delivery: &WebhookDeliveryRow,
    ) -> Result<u16, String> {
        // Checked again at every delivery: the rules may have changed since the endpoint was
        // made, and an address literal never reaches the resolver.
        let url = EndpointUrl::parse(&endpoint.url, self.policy)
            .map_err(|why| format!("the endpoint URL {why}"))?;
        let now = self.clock.now();
        let secrets = live_secrets(&self.cipher, endpoint, now)
            .ok_or("the endpoint's secret cannot be decrypted with this deployment's keys")?;
        let timestamp = now.and_utc().timestamp();
        let body = delivery.payload.as_bytes();
        let signature = signature_header(&secrets, &delivery.message_id, timestamp, body);
        let response = self
            .client
            .post(url.as_url().clone())
            .header("content-type", "application/json")
            .header("webhook-id", &delivery.message_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(delivery.payload.clone())
            .send()
            .await
            .map_err(describe)?;
        let status = response.status().as_u16();
        drain(response).await;
        Ok(status)
    }
}

/// Reads at most [`MAX_RESPONSE_BYTES`] of an answer (within the request's timeout) and drops it.
async fn drain(mut response: reqwest::Response) {
    let mut read = 0;
    while read < MAX_RESPONSE_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => read += chunk.len(),
            _ => break,
        }
    }
}

/// Why a request failed, without the URL (it may carry a token in its query).
fn describe(err: reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut cause = std::error::Error::source(&err);
    let mut detail = String::new();
    while let Some(inner) = cause {
        detail = inner.to_string();
        cause = inner.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {}", detail.chars().take(200).collect::<String>())
    }
}

/// Disables an endpoint that failed for [`DISABLE_AFTER`], audited, announced to the tenant's
/// other endpoints (`webhook_endpoint.disabled`).
fn disable(
    conn: &mut crate::store::DbConnection,
    clock: &Clock,
    tenant: &TenantId,
    id: &str,
    at: NaiveDateTime,
) -> Result<(), StoreError> {
    let changes = WebhookEndpointChanges {
        enabled: Some(false),
        disabled_reason: Some(Some(
            "deliveries failed for 5 days without a success".to_owned(),
        )),
        updated_at: Some(at),
        ..Default::default()
    };
    webhooks::update_endpoint(conn, tenant, id, &changes)?;
    let audit = AuditContext {
        actor: Actor::System,
        clock: clock.clone(),
        ..AuditContext::cli()
    };
    let subject = Subject::WebhookEndpoint {
        id: WebhookEndpointId::from_trusted(id.to_owned()),
    };
    let fields = json!({ "enabled": false, "reason": "failing_for_5_days" });
    Event::record(conn, &audit, tenant, subject, Change::Disabled, fields)?;
    tracing::warn!(endpoint = %id, "webhook endpoint disabled after 5 days of failures");
    Ok(())
}

/// Resolves names as usual, then keeps only addresses the outbound policy allows: a name that
/// resolves (now, at delivery) to a private address is refused, whatever it resolved to when
/// the endpoint was made.
struct CheckedResolver(OutboundPolicy);

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| policy.allows(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err("the endpoint's host resolves only to private, loopback or \
                            link-local addresses"
                    .into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}
