//! Extractors that say who is asking and what they may do; each handler names the permission
//! it needs in its signature (`Member<can::ManageMembers>`), checked before the body runs.

use std::future::{Ready, ready};
use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};

use super::PageError;
use super::guard::Visit;
use crate::audit::{Actor, AuditContext};
use crate::auth::session::{SignedIn, TenantChoice};
use crate::domain::ids::{TenantId, UserId};
use crate::domain::role::{Action, Role};

impl FromRequest for Visit {
    type Error = PageError;
    type Future = Ready<Result<Self, PageError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // The guard wraps every dashboard route; a missing visit is a wiring bug, so refuse.
        ready(
            req.extensions()
                .get::<Visit>()
                .cloned()
                .ok_or(PageError::Csrf),
        )
    }
}

/// The permission a handler needs, as a type.
pub trait Permission {
    const ACTION: Action;
}

/// Marker types for [`Member`], one per [`Action`].
pub mod can {
    use super::{Action, Permission};

    macro_rules! permission {
        ($($name:ident),*) => {$(
            #[derive(Debug)]
            pub struct $name;
            impl Permission for $name {
                const ACTION: Action = Action::$name;
            }
        )*};
    }
    permission!(
        View,
        ManageKeys,
        ManageKeyspaces,
        CreateRootKeys,
        RevokeRootKeys,
        ManageMembers,
        ManageWebhooks
    );
}

/// A signed-in member of the current tenant whose role allows `P`.
#[derive(Debug)]
pub struct Member<P: Permission = can::View> {
    pub session: SignedIn,
    pub tenant: TenantChoice,
    pub csrf_token: String,
    pub audit: AuditContext,
    permission: PhantomData<P>,
}

impl<P: Permission> Member<P> {
    pub fn tenant_id(&self) -> &TenantId {
        &self.tenant.id
    }

    pub fn role(&self) -> Role {
        self.tenant.role
    }

    pub fn user_id(&self) -> &str {
        &self.session.user_id
    }

    pub fn can(&self, action: Action) -> bool {
        self.tenant.role.allows(action)
    }

    /// What the base layout needs: who is signed in, where, and the tenant switcher.
    pub fn layout(&self, section: &'static str) -> Layout {
        Layout {
            section,
            csrf_token: self.csrf_token.clone(),
            email: Some(self.session.email.clone()),
            tenant_name: Some(self.tenant.name.clone()),
            tenant_id: Some(self.tenant.id.as_str().to_owned()),
            role: Some(self.tenant.role),
            tenants: switcher(&self.session.tenants),
        }
    }
}

impl<P: Permission> FromRequest for Member<P> {
    type Error = PageError;
    type Future = Ready<Result<Self, PageError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(member(req))
    }
}

fn member<P: Permission>(req: &HttpRequest) -> Result<Member<P>, PageError> {
    let visit = req
        .extensions()
        .get::<Visit>()
        .cloned()
        .ok_or(PageError::Csrf)?;
    let Some(session) = visit.signed_in else {
        let next = if req.method() == actix_web::http::Method::GET {
            req.uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned()
        } else {
            "/".to_owned()
        };
        return Err(PageError::SignIn { next });
    };
    let tenant = session.tenant().cloned().ok_or(PageError::NoTenant)?;
    let audit = crate::routes::audit_context(
        req,
        Actor::User(UserId::from_trusted(session.user_id.clone())),
    );
    let member = Member {
        session,
        tenant,
        csrf_token: visit.csrf_token,
        audit,
        permission: PhantomData,
    };
    if !member.tenant.role.allows(P::ACTION) {
        // Said inside the dashboard's own frame, so the member can go on from there.
        return Err(PageError::Forbidden(Box::new(member.layout(""))));
    }
    Ok(member)
}

/// `?notice=` of a page a form redirected to after a change: which message to show.
#[derive(serde::Deserialize)]
pub struct Notice {
    pub notice: Option<String>,
}

/// The part of every page the base layout draws.
#[derive(Debug, Default)]
pub struct Layout {
    /// Which navigation entry is current.
    pub section: &'static str,
    pub csrf_token: String,
    pub email: Option<String>,
    pub tenant_name: Option<String>,
    pub tenant_id: Option<String>,
    pub role: Option<Role>,
    /// `(id, label)` of every tenant the user belongs to, for the switcher ([`switcher`]).
    pub tenants: Vec<(String, String)>,
}

impl Layout {
    /// For pages anyone may see (sign-in, invitations): the header shows who is signed in,
    /// if anyone.
    pub fn anonymous(visit: &Visit) -> Self {
        let mut layout = Self {
            section: "",
            csrf_token: visit.csrf_token.clone(),
            ..Self::default()
        };
        if let Some(session) = &visit.signed_in {
            layout.email = Some(session.email.clone());
            layout.tenants = switcher(&session.tenants);
            if let Some(tenant) = session.tenant() {
                layout.tenant_name = Some(tenant.name.clone());
                layout.tenant_id = Some(tenant.id.as_str().to_owned());
                layout.role = Some(tenant.role);
            }
        }
        layout
    }

    pub fn role_label(&self) -> &'static str {
        self.role.map_or("", Role::label)
    }

    pub fn is_current(&self, section: &str) -> bool {
        self.section == section
    }

    pub fn is_current_tenant(&self, id: &str) -> bool {
        self.tenant_id.as_deref() == Some(id)
    }
}

/// The tenant switcher's choices, `(id, label)`. Tenant names may repeat, so a name the user's
/// tenants share is followed by the end of each one's id: every choice reads differently.
fn switcher(tenants: &[TenantChoice]) -> Vec<(String, String)> {
    tenants
        .iter()
        .map(|t| {
            let shared = tenants.iter().filter(|o| o.name == t.name).count() > 1;
            let id = t.id.as_str();
            let label = if shared {
                // UUIDv7: the last characters are random, the first a timestamp.
                let end = id.get(id.len().saturating_sub(8)..).unwrap_or(id);
                format!("{} (…{end})", t.name)
            } else {
                t.name.clone()
            };
            (id.to_owned(), label)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_of_one_name_are_told_apart_in_the_switcher() {
        let choice = |id: &str, name: &str| TenantChoice {
            id: TenantId::from_trusted(id.into()),
            name: name.into(),
            role: Role::Owner,
        };
        let tenants = [
            choice("0190-aaaa-11111111", "Acme"),
            choice("0190-bbbb-22222222", "Acme"),
            choice("0190-cccc-33333333", "Hooli"),
        ];
        let labels: Vec<_> = switcher(&tenants).into_iter().map(|(_, l)| l).collect();
        assert_eq!(labels, ["Acme (…11111111)", "Acme (…22222222)", "Hooli"]);
    }
}
