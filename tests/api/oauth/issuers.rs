//! Tenant isolation of access tokens: each tenant is its own issuer with its own keys, so a
//! service that verifies tokens offline from its tenant's metadata never accepts another
//! tenant's token, whichever single check it makes.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Value, json};

use super::{assert_oauth_error, documents_client, parts};
use crate::helpers::{TestApp, TestKey, TestTenant, World};

/// A second tenant on the same app, with a keyspace and a client of its own.
struct Stranger {
    tenant: TestTenant,
    client: TestKey,
}

async fn stranger(world: &World) -> Stranger {
    let tenant = world.app.tenant("globex").await;
    let space = world.app.keyspace(&tenant, "globex_live").await;
    let client = world
        .app
        .create_key(&space, |k| k.scopes(["documents:read"]))
        .await;
    Stranger { tenant, client }
}

async fn world() -> World {
    TestApp::spawn().await.with_space("acme").await
}

/// What a resource server of the world's tenant configures from its issuer's metadata.
struct PinnedVerifier {
    issuer: String,
    audience: String,
    jwks: JwkSet,
}

impl PinnedVerifier {
    async fn of(world: &World) -> Self {
        let metadata = world.metadata().await;
        let jwks = world.jwks_of_metadata(&metadata).await;
        let issuer = metadata["issuer"].as_str().unwrap().to_owned();
        Self {
            audience: world.audience(),
            issuer,
            jwks,
        }
    }

    /// Verifies with the pinned JWKS and only the checks asked for; `Err` names what failed.
    fn check(&self, token: &str, issuer: bool, audience: bool) -> Result<Value, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
        let jwk = header
            .kid
            .as_deref()
            .and_then(|kid| self.jwks.find(kid))
            .ok_or("kid not in the pinned JWKS")?;
        let mut validation = Validation::new(header.alg);
        validation.set_required_spec_claims(&["exp"]);
        validation.validate_aud = audience;
        if audience {
            validation.set_audience(&[&self.audience]);
        }
        if issuer {
            validation.set_issuer(&[&self.issuer]);
        }
        let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
        jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| e.to_string())
    }

    /// The pinned tenant's keys, tried on a token whatever its `kid` says (a verifier that
    /// ignores `kid`): another tenant's token must still fail on the signature.
    fn signature_holds(&self, token: &str) -> bool {
        let mut validation = Validation::new(jsonwebtoken::Algorithm::EdDSA);
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp"]);
        self.jwks.keys.iter().any(|jwk| {
            DecodingKey::from_jwk(jwk)
                .ok()
                .is_some_and(|key| jsonwebtoken::decode::<Value>(token, &key, &validation).is_ok())
        })
    }
}

#[tokio::test]
async fn a_verifier_pinned_to_one_tenant_refuses_another_tenants_token_on_each_check_alone() {
    let world = world().await;
    let ours = world
        .access_token(&world.create_key(documents_client).await, None)
        .await;
    let other = stranger(&world).await;
    let theirs = world.app.access_token(&other.client, None).await;
    let pinned = PinnedVerifier::of(&world).await;

    pinned
        .check(&ours, true, true)
        .expect("the tenant's own token verifies with every check");
    // Signature: the other tenant signs with keys of its own, which the pinned JWKS lacks.
    assert!(pinned.check(&theirs, false, false).is_err());
    assert!(
        !pinned.signature_holds(&theirs),
        "another tenant's keys sign it"
    );
    // Issuer and audience, each on its own (verified with the key that signed it).
    let (_, claims) = parts(&theirs);
    assert_ne!(claims["iss"], pinned.issuer);
    assert_ne!(claims["aud"], pinned.audience);
    assert_eq!(claims["tenant_id"], other.tenant.id);
    let their_pin = PinnedVerifier {
        jwks: serde_json::from_value(
            world
                .app
                .get(&format!("/oauth/{}/jwks.json", other.tenant.id))
                .await
                .json::<Value>()
                .await
                .unwrap(),
        )
        .unwrap(),
        ..PinnedVerifier::of(&world).await
    };
    assert!(
        their_pin.check(&theirs, false, false).is_ok(),
        "its own key verifies it"
    );
    let issuer = their_pin.check(&theirs, true, false).unwrap_err();
    assert!(issuer.contains("Issuer"), "{issuer}");
    let audience = their_pin.check(&theirs, false, true).unwrap_err();
    assert!(audience.contains("Audience"), "{audience}");

    // latchkey itself: the other tenant's token is nothing of this tenant's.
    assert_eq!(world.verify(&theirs, json!({})).await["code"], "NOT_FOUND");
    assert_eq!(world.verify(&ours, json!({})).await["code"], "VALID");
    let introspected: Value = world.introspect(&theirs).await.json().await.unwrap();
    assert_eq!(introspected, json!({"active": false}));
}

#[tokio::test]
async fn a_tenants_own_endpoints_serve_its_clients_and_refuse_everyone_elses() {
    let world = world().await;
    let client = world.create_key(documents_client).await;
    let other = stranger(&world).await;
    let issuer = world.issuer_path();

    // Token: the tenant's client gets a token; another tenant's client is an unknown client.
    let ours = world
        .app
        .client
        .post(world.app.url(&format!("{issuer}/token")))
        .basic_auth(&client.id, Some(&client.key))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(ours.status(), 200);
    let token = ours.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(parts(&token).1["iss"], world.issuer());
    let refused = world
        .app
        .client
        .post(world.app.url(&format!("{issuer}/token")))
        .basic_auth(&other.client.id, Some(&other.client.key))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_oauth_error(refused, 401, "invalid_client").await;

    // The deployment-wide alias finds the tenant from the client: the other tenant's issuer.
    let theirs = world.app.access_token(&other.client, None).await;
    assert_eq!(
        parts(&theirs).1["iss"],
        world.app.url(&format!("/oauth/{}", other.tenant.id))
    );

    // Introspection at this issuer with another tenant's root key: as if the key were unknown.
    let response = world
        .app
        .client
        .post(world.app.url(&format!("{issuer}/introspect")))
        .bearer_auth(&other.tenant.root_key)
        .form(&[("token", theirs.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = world
        .app
        .client
        .post(world.app.url(&format!("{issuer}/introspect")))
        .bearer_auth(&world.tenant.root_key)
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.json::<Value>().await.unwrap()["active"], true);

    // Revocation at this issuer: another tenant's client is refused, the tenant's own works.
    let refused = world
        .app
        .client
        .post(world.app.url(&format!("{issuer}/revoke")))
        .basic_auth(&other.client.id, Some(&other.client.key))
        .form(&[("token", theirs.as_str())])
        .send()
        .await
        .unwrap();
    assert_oauth_error(refused, 401, "invalid_client").await;
    let revoked = world
        .app
        .client
        .post(world.app.url(&format!("{issuer}/revoke")))
        .basic_auth(&client.id, Some(&client.key))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_ne!(world.verify(&token, json!({})).await["code"], "VALID");
    assert_eq!(
        world.app.verify_code(&other.tenant.root_key, &theirs).await,
        "VALID",
        "the other tenant's token is untouched"
    );
}
