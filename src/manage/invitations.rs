//! Invitations to join a tenant. The link is the credential (no mail server is assumed): only
//! the digest of its token is kept, it works once, for a week, and only for the invited
//! address. Members invite and withdraw; the invitee finds the invitation by its token and
//! accepts it, signed in or as a new account.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use serde_json::json;

use crate::audit::{Actor, AuditContext};
use crate::auth::password::Password;
use crate::auth::session::{self, INVITE_PURPOSE, SessionKeys, SessionToken, SignedIn};
use crate::domain::account::Email;
use crate::domain::error_code::ErrorCode;
use crate::domain::ids::{InvitationId, TenantId, UserId};
use crate::domain::role::Role;
use crate::domain::time::utc;
use crate::events::{Change, Event, Subject};
use crate::manage::accounts::Credentials;
use crate::manage::{Context, ManageError};
use crate::store::models::{InvitationRow, Membership, User};
use crate::store::{DbConnection, StoreError, invitations, memberships, sessions, tenants, users};

/// How long an invite link stays valid.
pub const INVITATION_LIFETIME: TimeDelta = TimeDelta::days(7);

/// An invitation a member is about to send.
#[derive(Clone, Debug)]
pub struct NewInvitation {
    pub email: Email,
    pub role: Role,
    pub invited_by: UserId,
}

/// An invitation just made, with the token of its link: shown once, never stored.
#[derive(Debug)]
pub struct Invited {
    pub id: InvitationId,
    pub token: SessionToken,
}

/// An invitation not yet accepted, as the tenant's members see it.
#[derive(Clone, Debug)]
pub struct PendingInvitation {
    pub id: InvitationId,
    pub email: String,
    pub role: Role,
    pub expires_at: DateTime<Utc>,
}

/// A valid invitation, as its link shows it to the invitee.
#[derive(Clone, Debug)]
pub struct Invitation {
    pub id: InvitationId,
    pub tenant: TenantId,
    pub tenant_name: String,
    pub email: String,
    pub role: Role,
    /// Whether the invited address has an account (then its owner signs in to accept).
    pub has_account: bool,
}

/// Who accepts an invitation.
pub enum Joining<'a> {
    /// The invitee, signed in: their session moves to the tenant.
    SignedIn(&'a SignedIn),
    /// Someone without an account, with the password they chose: the account is made and a
    /// session started.
    NewAccount(Password),
}

/// An accepted invitation: the member, and the session started for a new account.
#[derive(Debug)]
pub struct Joined {
    pub tenant: TenantId,
    pub user_id: UserId,
    pub session: Option<SessionToken>,
}

/// Invites `new.email` with `new.role`, as a member whose role is `actor`; a pending
/// invitation of the same address is replaced.
pub async fn invite(
    cx: &Context<'_>,
    keys: &SessionKeys,
    audit: &AuditContext,
    tenant: &TenantId,
    actor: Role,
    new: NewInvitation,
) -> Result<Invited, ManageError> {
    if !actor.may_manage(new.role) {
        return Err(ManageError::Forbidden(
            "Only owners can invite owners.".into(),
        ));
    }
    let (id, token) = (InvitationId::new(), SessionToken::generate());
    let at = cx.clock.now();
    let row = InvitationRow {
        id: id.as_str().to_owned(),
        tenant_id: tenant.as_str().to_owned(),
        email: new.email.as_str().to_owned(),
        role: new.role.as_str().to_owned(),
        token_digest: keys.digest(INVITE_PURPOSE, &token),
        invited_by: new.invited_by.into_string(),
        created_at: at,
        expires_at: at + INVITATION_LIFETIME,
        accepted_at: None,
    };
    let (audit, tenant) = (audit.clone(), tenant.clone());
    let (id, event) = cx
        .store
        .transaction(move |conn| {
            let already = memberships::list_for_tenant(conn, &tenant)?
                .into_iter()
                .any(|(_, email)| email == row.email);
            if already {
                return Err(ManageError::refused(
                    ErrorCode::AlreadyMember,
                    "This person is already a member of this tenant.",
                ));
            }
            invitations::delete_pending_for_email(conn, &tenant, &row.email)?;
            invitations::insert(conn, &row)?;
            let fields = json!({ "email": row.email, "role": row.role });
            let subject = Subject::Invitation { id: id.clone() };
            let event = Event::record(conn, &audit, &tenant, subject, Change::Created, fields)?;
            Ok((id, event))
        })
        .await?;
    cx.events.dispatch(&[event]).await;
    Ok(Invited { id, token })
}

/// The tenant's invitations not yet accepted and not expired, newest first.
pub async fn pending(
    cx: &Context<'_>,
    tenant: &TenantId,
) -> Result<Vec<PendingInvitation>, ManageError> {
    let (tenant, at) = (tenant.clone(), cx.clock.now());
    let rows = cx
        .store
        .run(move |conn| invitations::list_pending(conn, &tenant, at))
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            Some(PendingInvitation {
                role: Role::parse(&row.role)?,
                id: InvitationId::from_trusted(row.id),
                email: row.email,
                expires_at: utc(row.expires_at),
            })
        })
        .collect())
}

/// Withdraws a pending invitation, as a member whose role is `actor`: its link stops working.
pub async fn withdraw(
    cx: &Context<'_>,
    audit: &AuditContext,
    tenant: &TenantId,
    actor: Role,
    id: &InvitationId,
) -> Result<(), ManageError> {
    let (audit, tenant, id) = (audit.clone(), tenant.clone(), id.clone());
    let event = cx
        .store
        .transaction(move |conn| {
            let found = invitations::delete_pending(conn, &tenant, id.as_str())?
                .ok_or(ManageError::NotFound("invitation"))?;
            if !Role::parse(&found.role).is_some_and(|r| actor.may_manage(r)) {
                return Err(ManageError::Forbidden(
                    "Only owners can withdraw an invitation to become owner.".into(),
                ));
            }
            let fields = json!({ "email": found.email, "role": found.role });
            let subject = Subject::Invitation { id };
            Ok(Event::record(
                conn,
                &audit,
                &tenant,
                subject,
                Change::Removed,
                fields,
            )?)
        })
        .await?;
    cx.events.dispatch(&[event]).await;
    Ok(())
}

/// The invitation an invite link stands for, if it is still valid.
pub async fn find(
    cx: &Context<'_>,
    keys: &SessionKeys,
    token: &SessionToken,
) -> Result<Invitation, ManageError> {
    let (digest, at) = (keys.digest(INVITE_PURPOSE, token), cx.clock.now());
    cx.store
        .run(move |conn| find_valid(conn, &digest, at))
        .await?
        .map(|found| found.invitation)
        .ok_or(ManageError::NotFound("invitation"))
}

/// Joins the tenant the link invites to. The link works once: a second acceptance, or one
/// after the link expired or was withdrawn, finds nothing; so does one whose account appeared
/// or vanished since the invitation was shown (the invitee starts over).
pub async fn accept(
    cx: &Context<'_>,
    credentials: Credentials<'_>,
    audit: &AuditContext,
    token: &SessionToken,
    joining: Joining<'_>,
) -> Result<Joined, ManageError> {
    let digest = credentials.keys.digest(INVITE_PURPOSE, token);
    let (signed_in, password_hash) = match joining {
        Joining::SignedIn(s) => (Some((s.digest.clone(), s.user_id.clone())), None),
        Joining::NewAccount(password) => {
            let hash = credentials.passwords.hash(password).await;
            (None, Some(hash.map_err(ManageError::Internal)?))
        }
    };
    let (keys, mut audit) = (credentials.keys.clone(), audit.clone());
    let at = cx.clock.now();
    let (joined, event) = cx
        .store
        .transaction(move |conn| {
            // Read again inside the transaction: the link works once.
            let Some(found) = find_valid(conn, &digest, at)? else {
                return Err(ManageError::NotFound("invitation"));
            };
            let invitation = found.invitation;
            // Claimed before anything else is written: of tabs accepting at once, one joins and
            // the others find the link used (not a unique violation on the membership).
            if !invitations::claim(conn, invitation.id.as_str(), at)? {
                return Err(ManageError::NotFound("invitation"));
            }
            let user_id = match (found.account, password_hash, &signed_in) {
                (Some(user), None, Some((_, signed_in_as))) if user.id == *signed_in_as => user.id,
                (None, Some(hash), None) => users::create(conn, &invitation.email, hash, at)?,
                _ => {
                    return Err(ManageError::Forbidden(
                        "The account of this address changed; open the link again.".into(),
                    ));
                }
            };
            let user_id = UserId::from_trusted(user_id);
            let tenant = invitation.tenant.clone();
            let mut joined = None;
            if memberships::find(conn, &tenant, user_id.as_str())?.is_none() {
                memberships::insert(
                    conn,
                    &Membership {
                        tenant_id: tenant.as_str().to_owned(),
                        user_id: user_id.as_str().to_owned(),
                        role: invitation.role.as_str().to_owned(),
                        created_at: at,
                    },
                )?;
                audit.actor = Actor::User(user_id.clone());
                let fields = json!({
                    "email": invitation.email,
                    "role": invitation.role.as_str(),
                    "invitation_id": invitation.id,
                });
                let subject = Subject::Member {
                    user_id: user_id.clone(),
                };
                let event = Event::record(conn, &audit, &tenant, subject, Change::Created, fields)?;
                joined = Some(event);
            }
            let session = match signed_in {
                Some((digest, _)) => {
                    sessions::set_tenant(conn, &digest, &tenant)?;
                    None
                }
                None => Some(session::start(
                    conn,
                    &keys,
                    user_id.as_str(),
                    Some(&tenant),
                    at,
                )?),
            };
            Ok::<_, ManageError>((
                Joined {
                    tenant,
                    user_id,
                    session,
                },
                joined,
            ))
        })
        .await?;
    cx.events.dispatch(event.as_slice()).await;
    Ok(joined)
}

/// A valid invitation with the account of its address, if there is one.
struct Found {
    invitation: Invitation,
    account: Option<User>,
}

fn find_valid(
    conn: &mut DbConnection,
    digest: &[u8],
    at: NaiveDateTime,
) -> Result<Option<Found>, StoreError> {
    let Some(row) = invitations::find_by_digest(conn, digest)? else {
        return Ok(None);
    };
    if row.accepted_at.is_some() || row.expires_at <= at {
        return Ok(None);
    }
    let tenant = TenantId::from_trusted(row.tenant_id);
    let (Some(found), Some(role)) = (tenants::find(conn, &tenant)?, Role::parse(&row.role)) else {
        return Ok(None);
    };
    let account = users::find_by_email(conn, &row.email)?;
    Ok(Some(Found {
        invitation: Invitation {
            id: InvitationId::from_trusted(row.id),
            tenant,
            tenant_name: found.name,
            email: row.email,
            role,
            has_account: account.is_some(),
        },
        account,
    }))
}
