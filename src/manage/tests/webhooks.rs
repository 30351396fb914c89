//! The outbox: a change's webhook deliveries are written in its transaction, so a change that
//! rolls back leaves none, and one that commits always has them.

use serde_json::json;

use super::World;
use crate::domain::commands::NewWebhookEndpoint;
use crate::domain::ids::{TenantId, UserId};
use crate::domain::secrets::MasterKey;
use crate::domain::webhook::{EndpointUrl, EventTypes, OutboundPolicy};
use crate::events::{Change, Event, Subject};
use crate::manage::{ManageError, PageRequest, webhooks};
use crate::tokens::signing::KeyCipher;

impl World {
    /// An endpoint of the world's tenant subscribed to `events`; answers its id.
    async fn endpoint(&self, events: &[&str]) -> crate::domain::ids::WebhookEndpointId {
        let cipher = KeyCipher::new(&MasterKey::from_bytes(vec![7; 32]).unwrap().derive(), &[]);
        let new = NewWebhookEndpoint {
            url: EndpointUrl::parse("https://hooks.example.com/in", OutboundPolicy::default())
                .unwrap(),
            events: EventTypes::parse(events).unwrap(),
            description: String::new(),
            enabled: true,
        };
        let created = webhooks::create(&self.cx(), &self.audit, &self.tenant, &cipher, new)
            .await
            .unwrap();
        crate::domain::ids::WebhookEndpointId::from_trusted(created.endpoint.id)
    }

    /// A membership change recorded in a transaction that then commits or rolls back.
    async fn member_added(&self, tenant: &TenantId, commit: bool) -> Result<(), ManageError> {
        let (audit, tenant) = (self.audit.clone(), tenant.clone());
        self.store
            .transaction(move |conn| {
                let subject = Subject::Member {
                    user_id: UserId::new(),
                };
                Event::record(conn, &audit, &tenant, subject, Change::Created, json!({}))?;
                if commit {
                    Ok(())
                } else {
                    Err(ManageError::invalid(
                        "role",
                        "refused after the event was recorded",
                    ))
                }
            })
            .await
    }
}

#[tokio::test]
async fn deliveries_are_written_with_the_change_or_not_at_all() {
    let world = World::new();
    let id = world.endpoint(&["member.added"]).await;
    let count = || async {
        let page = PageRequest::parse(Some(100), None).unwrap();
        webhooks::deliveries(&world.cx(), &world.tenant, &id, page)
            .await
            .unwrap()
            .data
    };
    let tenant = world.tenant.clone();
    assert!(world.member_added(&tenant, false).await.is_err());
    assert!(
        count().await.is_empty(),
        "a rolled-back change has no delivery"
    );
    world.member_added(&tenant, true).await.unwrap();
    let written = count().await;
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].event_type, "member.added");
    assert_eq!(written[0].status, "pending");

    // Another tenant's changes reach none of this tenant's endpoints.
    let other = world.add_tenant("globex");
    world.member_added(&other, true).await.unwrap();
    assert_eq!(count().await.len(), 1);
}
