//! Every stable error code the API answers with, in one list: services and engines name a
//! code, and only the HTTP edge decides which status and body it becomes.

macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident => $text:literal,)+) => {
        /// A stable, machine-readable error code (the `code` of a problem+json answer).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)+
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &[ErrorCode] = &[$(Self::$variant,)+];

            /// The code as clients see it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }
    };
}

error_codes! {
    /// A field of the request failed validation; `errors` names it.
    ValidationFailed => "validation_failed",
    /// The body is JSON of the wrong shape, or could not be read.
    InvalidBody => "invalid_body",
    /// The body is not JSON.
    InvalidJson => "invalid_json",
    PayloadTooLarge => "payload_too_large",
    UnsupportedMediaType => "unsupported_media_type",
    /// No credential, or one that is not valid.
    Unauthorized => "unauthorized",
    /// A valid credential without the power the request needs.
    Forbidden => "forbidden",
    NotFound => "not_found",
    /// The path exists but does not take this method; `Allow` lists the ones it takes.
    MethodNotAllowed => "method_not_allowed",
    RateLimited => "rate_limited",
    /// Unexpected; the request id finds the cause in the server log.
    InternalError => "internal_error",
    StoreUnavailable => "store_unavailable",
    InvalidIdempotencyKey => "invalid_idempotency_key",
    /// The Idempotency-Key was used before with a different request.
    IdempotencyKeyReused => "idempotency_key_reused",
    /// A request with the same Idempotency-Key is still being processed.
    IdempotencyConflict => "idempotency_conflict",
    /// A concurrent import wrote some of the same keys first.
    ImportConflict => "import_conflict",
    /// A bulk revocation named no selector, or several.
    InvalidSelector => "invalid_selector",
    /// A leak report carried more tokens than one report may.
    TooManyTokens => "too_many_tokens",
    /// The tenant already has a keyspace with that prefix.
    PrefixTaken => "prefix_taken",
    KeyExpired => "key_expired",
    /// A live key (active or disabled) was to be deleted without `force=true`.
    KeyActive => "key_active",
    KeyAlreadyRotated => "key_already_rotated",
    KeyRevoked => "key_revoked",
    /// A revoked key was rotated: its whole family has been revoked.
    KeyRevokedReuseDetected => "key_revoked_reuse_detected",
    /// The tenant's last root key able to manage root keys cannot be revoked.
    LastRootAdminKey => "last_root_admin_key",
    /// The tenant's last owner can be neither demoted nor removed.
    LastOwner => "last_owner",
    /// The invited address already belongs to a member of the tenant.
    AlreadyMember => "already_member",
    /// An account with that e-mail address exists.
    EmailTaken => "email_taken",
    /// The tenant has as many webhook endpoints as one tenant may.
    TooManyWebhookEndpoints => "too_many_webhook_endpoints",
    /// The tenant already has a key role with that name.
    RoleNameTaken => "role_name_taken",
    /// Keys hold the key role; deleting it needs `force`.
    RoleInUse => "role_in_use",
    /// The tenant has as many key roles as one tenant may.
    TooManyRoles => "too_many_roles",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn codes_are_unique_snake_case_words() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "{text} twice");
            assert!(
                !text.is_empty() && text.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{text} is not snake_case"
            );
        }
    }
}
