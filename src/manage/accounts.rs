//! Dashboard accounts: signing up (a user, their tenant and its owner membership), signing in
//! (throttled, the same work for unknown addresses), signing out, switching tenants.

use crate::audit::AuditContext;
use crate::auth::password::{Password, PasswordWorkers};
use crate::auth::session::{self, SessionKeys, SessionToken, SignedIn};
use crate::auth::sign_in_throttle::SignInThrottle;
use crate::domain::account::{Email, TenantName, parse_email};
use crate::domain::error_code::ErrorCode;
use crate::domain::ids::{TenantId, UserId};
use crate::manage::tenants::{self, Founder};
use crate::manage::{Context, ManageError};
use crate::store::{memberships, sessions, users};

/// What accounts are made and signed in with: the keys that digest session ids and invite
/// links, the password workers, and the sign-in throttle.
#[derive(Clone, Copy)]
pub struct Credentials<'a> {
    pub keys: &'a SessionKeys,
    pub passwords: &'a PasswordWorkers,
    pub throttle: &'a SignInThrottle,
}

/// Someone signing up, with the tenant they open.
#[derive(Debug)]
pub struct SignUp {
    pub email: Email,
    pub password: Password,
    pub tenant: TenantName,
    /// Where the attempt comes from (the client's IP address), for the throttle.
    pub address: String,
}

/// A new account, the owner of a new tenant, signed in there.
#[derive(Debug)]
pub struct SignedUp {
    pub user_id: UserId,
    pub tenant: TenantId,
    pub session: SessionToken,
}

/// Creates the user, their tenant and the owner membership (with audit events) in one
/// transaction, and starts their session. Throttled per address and per client like sign-in.
///
/// `Ok(None)` when the address already has an account: nothing is made, and the caller
/// answers as it would for a new account, so sign-up tells no one which addresses exist. The
/// tenant's name is never refused: names may repeat (each sign-up opens its own tenant, known
/// by its id), so it tells no one which names exist either.
/// The password is hashed either way (the same work).
pub async fn sign_up(
    cx: &Context<'_>,
    credentials: Credentials<'_>,
    audit: &AuditContext,
    new: SignUp,
) -> Result<Option<SignedUp>, ManageError> {
    // Counted now, like a sign-in: one address cannot be probed more often than guessed.
    let throttle = credentials.throttle;
    if let Err(retry_after) = throttle.attempt(new.email.as_str(), &new.address).await {
        return Err(ManageError::Throttled { retry_after });
    }
    let password_hash = credentials.passwords.hash(new.password).await;
    let password_hash = password_hash.map_err(ManageError::Internal)?;
    let (keys, audit, at) = (credentials.keys.clone(), audit.clone(), cx.clock.now());
    let (email, name) = (new.email, new.tenant);
    let created = cx
        .store
        .transaction(move |conn| {
            let founder = Founder::SigningUp {
                email: &email,
                password_hash,
            };
            let opened = tenants::create_with_owner(conn, &audit, &name, founder, at)?;
            let owner = opened.owner.as_str();
            let session = session::start(conn, &keys, owner, Some(&opened.tenant), at)?;
            let signed_up = SignedUp {
                user_id: opened.owner,
                tenant: opened.tenant,
                session,
            };
            Ok::<_, ManageError>((signed_up, opened.joined))
        })
        .await;
    match created {
        Ok((signed_up, joined)) => {
            cx.events.dispatch(&[joined]).await;
            Ok(Some(signed_up))
        }
        Err(ManageError::Refused {
            code: ErrorCode::EmailTaken,
            ..
        }) => Ok(None),
        // Two sign-ups racing for one new address: the unique index on users' e-mail decides,
        // and the loser is answered as any taken address is. (Tenant names may repeat.)
        Err(ManageError::Store(err)) if err.is_unique_violation() => Ok(None),
        Err(err) => Err(err),
    }
}

/// A sign-in attempt.
#[derive(Debug)]
pub struct SignIn<'a> {
    /// The e-mail address as typed.
    pub email: &'a str,
    pub password: Password,
    /// Where the attempt comes from (the client's IP address), for the throttle.
    pub address: &'a str,
    /// The digest of the session the browser had, ended by signing in.
    pub replacing: Option<Vec<u8>>,
}

/// Checks the password (throttled per account and per address, the same work for unknown
/// e-mail addresses) and starts a new session, in the user's first tenant.
pub async fn sign_in(
    cx: &Context<'_>,
    credentials: Credentials<'_>,
    attempt: SignIn<'_>,
) -> Result<SessionToken, ManageError> {
    let account = parse_email(attempt.email).unwrap_or_else(|| attempt.email.trim().to_lowercase());
    // Counted now, before the password is checked: parallel guesses get no extra tries.
    let throttle = credentials.throttle;
    if let Err(retry_after) = throttle.attempt(&account, attempt.address).await {
        return Err(ManageError::Throttled { retry_after });
    }
    let lookup = account.clone();
    let user = cx
        .store
        .run(move |conn| users::find_by_email(conn, &lookup))
        .await?;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let matched = credentials.passwords.verify(attempt.password, stored).await;
    let matched = matched.map_err(ManageError::Internal)?;
    let Some(user) = user.filter(|_| matched) else {
        return Err(ManageError::refused(
            ErrorCode::Unauthorized,
            "That e-mail address and password do not match an account.",
        ));
    };
    throttle.succeeded(&account, attempt.address).await;

    let (keys, previous, at) = (credentials.keys.clone(), attempt.replacing, cx.clock.now());
    let token = cx
        .store
        .transaction(move |conn| {
            if let Some(previous) = previous {
                sessions::delete(conn, &previous)?;
            }
            sessions::delete_expired(conn, at)?;
            let tenant = memberships::list_for_user(conn, &user.id)?
                .into_iter()
                .next()
                .map(|(_, t)| TenantId::from_trusted(t.id));
            session::start(conn, &keys, &user.id, tenant.as_ref(), at)
        })
        .await?;
    Ok(token)
}

/// Ends the session with this digest.
pub async fn sign_out(cx: &Context<'_>, session: Vec<u8>) -> Result<(), ManageError> {
    Ok(cx
        .store
        .run(move |conn| sessions::delete(conn, &session))
        .await?)
}

/// Points a session at another tenant its user belongs to; any other is "not found".
pub async fn switch_tenant(
    cx: &Context<'_>,
    session: &SignedIn,
    tenant: &TenantId,
) -> Result<(), ManageError> {
    if !session.tenants.iter().any(|t| t.id == *tenant) {
        return Err(ManageError::NotFound("tenant"));
    }
    let (digest, tenant) = (session.digest.clone(), tenant.clone());
    Ok(cx
        .store
        .run(move |conn| sessions::set_tenant(conn, &digest, &tenant))
        .await?)
}
