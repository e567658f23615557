// @generated automatically by Diesel CLI.

diesel::table! {
    access_keys (id) {
        id -> Uuid,
        customer_id -> Uuid,
        name -> Text,
        detail -> Text,
        token_hash -> Text,
        token_prefix -> Text,
        tm_expire -> Timestamptz,
        tm_last_used -> Nullable<Timestamptz>,
        tm_create -> Timestamptz,
        tm_update -> Nullable<Timestamptz>,
        tm_delete -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    agents (id) {
        id -> Uuid,
        customer_id -> Uuid,
        username -> Text,
        password_hash -> Text,
        name -> Text,
        detail -> Text,
        permission -> Int4,
        is_guest -> Bool,
        tm_create -> Timestamptz,
        tm_update -> Nullable<Timestamptz>,
        tm_delete -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    customers (id) {
        id -> Uuid,
        username -> Text,
        name -> Text,
        detail -> Text,
        webhook_method -> Nullable<Text>,
        webhook_uri -> Text,
        line_secret -> Text,
        line_token -> Text,
        permission_ids -> Array<Nullable<Uuid>>,
        is_platform -> Bool,
        tm_create -> Timestamptz,
        tm_update -> Nullable<Timestamptz>,
        tm_delete -> Nullable<Timestamptz>,
        tm_freeze -> Nullable<Timestamptz>,
        webhook_secret -> Text,
    }
}

diesel::table! {
    // `txid` (xid8) is left out: diesel has no type for it, and only the
    // log's followers read it, in SQL of their own.
    events (id) {
        id -> Uuid,
        #[sql_name = "type"]
        type_ -> Text,
        customer_id -> Nullable<Uuid>,
        actor_id -> Nullable<Uuid>,
        request_id -> Nullable<Text>,
        tm_create -> Timestamptz,
        data -> Jsonb,
    }
}

diesel::table! {
    sessions (id) {
        id -> Uuid,
        agent_id -> Uuid,
        tm_create -> Timestamptz,
        tm_expire -> Timestamptz,
        tm_revoke -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(access_keys -> customers (customer_id));
diesel::joinable!(agents -> customers (customer_id));
diesel::joinable!(events -> customers (customer_id));
diesel::joinable!(sessions -> agents (agent_id));

diesel::allow_tables_to_appear_in_same_query!(access_keys, agents, customers, events, sessions,);
