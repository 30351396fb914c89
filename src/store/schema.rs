//! The portable schema shared by both backends (kept in step with both migrations trees).

diesel::table! {
    tenants (id) {
        id -> Text,
        name -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        email -> Text,
        password_hash -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    memberships (tenant_id, user_id) {
        tenant_id -> Text,
        user_id -> Text,
        role -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    invitations (id) {
        id -> Text,
        tenant_id -> Text,
        email -> Text,
        role -> Text,
        token_digest -> Binary,
        invited_by -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        accepted_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    sessions (id_digest) {
        id_digest -> Binary,
        user_id -> Text,
        tenant_id -> Nullable<Text>,
        csrf_token -> Text,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    keyspaces (id) {
        id -> Text,
        tenant_id -> Text,
        name -> Text,
        prefix -> Text,
        environment -> Text,
        default_ttl_seconds -> Nullable<BigInt>,
        default_scopes -> Text,
        default_ratelimit_limit -> Nullable<Integer>,
        default_ratelimit_window -> Nullable<Integer>,
        token_exchange_enabled -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        token_audience -> Nullable<Text>,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        tenant_id -> Text,
        keyspace_id -> Text,
        name -> Nullable<Text>,
        owner_id -> Nullable<Text>,
        scopes -> Text,
        meta -> Text,
        digest -> Binary,
        start -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        expires_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        revoked_reason -> Nullable<Text>,
        enabled -> Bool,
        ip_allowlist -> Text,
        ratelimit_limit -> Nullable<Integer>,
        ratelimit_window -> Nullable<Integer>,
        credits_remaining -> Nullable<BigInt>,
        credits_refill_amount -> Nullable<BigInt>,
        credits_refill_interval -> Nullable<Text>,
        credits_refilled_at -> Nullable<Timestamp>,
        rotated_from -> Nullable<Text>,
        family_id -> Text,
        idempotency_key -> Nullable<Text>,
        created_by -> Text,
        idempotency_fingerprint -> Nullable<Binary>,
        digest_kind -> Text,
        external_ref -> Nullable<Text>,
    }
}

diesel::table! {
    root_keys (id) {
        id -> Text,
        tenant_id -> Text,
        name -> Text,
        scopes -> Text,
        digest -> Binary,
        start -> Text,
        created_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        last_used_at -> Nullable<Timestamp>,
        created_by -> Text,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Text,
        tenant_id -> Text,
        occurred_at -> Timestamp,
        actor_type -> Text,
        actor_id -> Text,
        action -> Text,
        target_type -> Text,
        target_id -> Text,
        changes -> Text,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        request_id -> Nullable<Text>,
    }
}

diesel::table! {
    usage_rollups (key_id, hour, outcome) {
        tenant_id -> Text,
        key_id -> Text,
        hour -> Timestamp,
        outcome -> Text,
        count -> BigInt,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        tenant_id -> Text,
        algorithm -> Text,
        public_jwk -> Text,
        private_key_encrypted -> Binary,
        created_at -> Timestamp,
        retired_at -> Nullable<Timestamp>,
        remove_after -> Nullable<Timestamp>,
    }
}

diesel::table! {
    revoked_tokens (jti) {
        jti -> Text,
        tenant_id -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    webhook_endpoints (id) {
        id -> Text,
        tenant_id -> Text,
        url -> Text,
        description -> Text,
        events -> Text,
        enabled -> Bool,
        secret_sealed -> Binary,
        previous_secret_sealed -> Nullable<Binary>,
        previous_secret_until -> Nullable<Timestamp>,
        failing_since -> Nullable<Timestamp>,
        disabled_reason -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Text,
        tenant_id -> Text,
        endpoint_id -> Text,
        message_id -> Text,
        event_type -> Text,
        payload -> Text,
        created_at -> Timestamp,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Nullable<Timestamp>,
        claimed_until -> Nullable<Timestamp>,
        last_attempt_at -> Nullable<Timestamp>,
        last_status_code -> Nullable<Integer>,
        last_latency_ms -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        delivered_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    roles (id) {
        id -> Text,
        tenant_id -> Text,
        name -> Text,
        scopes -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    key_roles (key_id, role_id) {
        key_id -> Text,
        role_id -> Text,
        tenant_id -> Text,
    }
}

diesel::table! {
    deleted_keys (id) {
        id -> Text,
        tenant_id -> Text,
        digest -> Binary,
        deleted_at -> Timestamp,
    }
}

diesel::joinable!(memberships -> tenants (tenant_id));
diesel::joinable!(memberships -> users (user_id));
diesel::joinable!(keyspaces -> tenants (tenant_id));
diesel::joinable!(api_keys -> keyspaces (keyspace_id));
diesel::joinable!(root_keys -> tenants (tenant_id));
diesel::joinable!(audit_events -> tenants (tenant_id));
diesel::joinable!(webhook_deliveries -> webhook_endpoints (endpoint_id));
diesel::joinable!(key_roles -> roles (role_id));
diesel::joinable!(key_roles -> api_keys (key_id));

diesel::allow_tables_to_appear_in_same_query!(
    tenants,
    users,
    memberships,
    invitations,
    sessions,
    keyspaces,
    api_keys,
    root_keys,
    audit_events,
    usage_rollups,
    signing_keys,
    revoked_tokens,
    webhook_endpoints,
    webhook_deliveries,
    roles,
    key_roles,
    deleted_keys,
);
