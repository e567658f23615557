//! REST calls: the original endpoints (`/auth/login`, `/v1.0/customers`),
//! the newer ones (a customer's fields, LINE credentials, permission ids
//! and password, the caller's own customer, access keys), odd paths and
//! CORS preflights. Each call is sent with the credential in any of the
//! places the API reads it from, with hostile path ids, query strings and
//! bodies, because the REST adapter parses all of them by hand.

use proptest::prelude::*;

use super::super::values::{hostile, hostile_pool};

#[derive(Clone, Debug)]
pub enum PathId {
    Mark(&'static str),
    Raw(String),
    Verbatim(&'static str),
}

#[derive(Clone, Debug)]
pub enum RestBody {
    /// Fields built from a seed and hostile strings.
    Fields(u64, Vec<String>),
    Raw(String),
    /// Bytes that are not UTF-8, or that JSON does not allow unescaped.
    Bytes(&'static [u8]),
    /// A valid-looking object whose encoded size is MAX_BODY_BYTES plus this.
    Huge(i64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialPlace {
    Header,
    TokenParameter,
    AccessKeyParameter,
    HeaderAndSameToken,
    Conflicting,
}

/// The newer endpoints, each with its own body and status contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `PUT /v1.0/customers/{id}`.
    UpdateCustomer,
    /// `PUT /v1.0/customers/{id}/line_info`.
    LineInfo,
    /// `PUT /v1.0/customers/{id}/permission_ids`.
    PermissionIds,
    /// `PUT /v1.0/customers/{id}/password`.
    Password,
    /// `GET /v1.0/customer`.
    GetOwn,
    /// `PUT /v1.0/customer`.
    UpdateOwn,
    /// `GET /v1.0/accesskeys`.
    ListKeys,
    /// `POST /v1.0/accesskeys`.
    CreateKey,
    /// `GET /v1.0/accesskeys/{id}`.
    GetKey,
    /// `PUT /v1.0/accesskeys/{id}`.
    UpdateKey,
    /// `DELETE /v1.0/accesskeys/{id}`.
    DeleteKey,
}

impl Endpoint {
    pub fn method(self) -> &'static str {
        match self {
            Self::GetOwn | Self::ListKeys | Self::GetKey => "GET",
            Self::CreateKey => "POST",
            Self::DeleteKey => "DELETE",
            _ => "PUT",
        }
    }

    /// The path, with `id` in its place.
    pub fn path(self, id: &str) -> String {
        match self {
            Self::UpdateCustomer => format!("/v1.0/customers/{id}"),
            Self::LineInfo => format!("/v1.0/customers/{id}/line_info"),
            Self::PermissionIds => format!("/v1.0/customers/{id}/permission_ids"),
            Self::Password => format!("/v1.0/customers/{id}/password"),
            Self::GetOwn | Self::UpdateOwn => "/v1.0/customer".to_owned(),
            Self::ListKeys | Self::CreateKey => "/v1.0/accesskeys".to_owned(),
            Self::GetKey | Self::UpdateKey | Self::DeleteKey => format!("/v1.0/accesskeys/{id}"),
        }
    }

    /// Its answers are access keys rather than customers.
    pub fn keys(self) -> bool {
        matches!(
            self,
            Self::ListKeys | Self::CreateKey | Self::GetKey | Self::UpdateKey | Self::DeleteKey
        )
    }
}

/// A call to one of the newer endpoints.
#[derive(Clone, Debug)]
pub struct Call {
    pub endpoint: Endpoint,
    pub id: Option<PathId>,
    pub query: Vec<(String, String)>,
    pub body: Option<RestBody>,
}

#[derive(Clone, Debug)]
pub enum RestCall {
    Login(RestBody),
    List(Vec<(String, String)>),
    Get(PathId),
    Create(RestBody),
    Delete(PathId),
    /// `PUT /v1.0/customers/{id}` without a body.
    Put(PathId),
    Path(&'static str, &'static str),
    Preflight(String),
    Endpoint(Call),
}

impl RestCall {
    /// Whether it may delete a customer, revoke a key or change a password
    /// the world's principals depend on.
    pub fn may_destroy(&self) -> bool {
        match self {
            Self::Delete(_) => true,
            Self::Endpoint(call) => {
                matches!(call.endpoint, Endpoint::Password | Endpoint::DeleteKey)
            }
            _ => false,
        }
    }

    pub fn family(&self) -> &'static str {
        match self {
            Self::Login(_) => "rest login",
            Self::List(_) => "rest list",
            Self::Create(_) => "rest create",
            Self::Get(_) | Self::Delete(_) | Self::Put(_) => "rest by id",
            Self::Endpoint(call) => match call.endpoint {
                Endpoint::GetOwn | Endpoint::UpdateOwn => "rest own customer",
                endpoint if endpoint.keys() => "rest access keys",
                _ => "rest customer updates",
            },
            Self::Path(..) | Self::Preflight(_) => "rest other",
        }
    }
}

fn path_id() -> BoxedStrategy<PathId> {
    prop_oneof![
        6 => prop::sample::select(&["cust", "other", "platform", "cadmin", "key"][..]).prop_map(PathId::Mark),
        2 => any::<u128>().prop_map(|n| PathId::Raw(uuid::Uuid::from_u128(n).to_string())),
        2 => hostile().prop_map(PathId::Raw),
        2 => verbatim_id(),
    ]
    .boxed()
}

fn verbatim_id() -> BoxedStrategy<PathId> {
    prop::sample::select(
        &[
            "%00",
            "..",
            "%2e%2e%2fgraphql",
            "00000000-0000-0000-0000-000000000000",
            "%7B00000000-0000-0000-0000-000000000000%7D",
            "00000000-0000-0000-0000-00000000000%30",
            "a%2Fb",
            "%F0%9F%98%80",
            "%C0%AE",
            "%",
        ][..],
    )
    .prop_map(PathId::Verbatim)
    .boxed()
}

/// Path ids mostly among `marks`, else hostile.
fn path_id_of(marks: &'static [&'static str]) -> BoxedStrategy<PathId> {
    prop_oneof![
        6 => prop::sample::select(marks).prop_map(PathId::Mark),
        2 => any::<u128>().prop_map(|n| PathId::Raw(uuid::Uuid::from_u128(n).to_string())),
        2 => hostile().prop_map(PathId::Raw),
        2 => verbatim_id(),
    ]
    .boxed()
}

fn rest_body() -> BoxedStrategy<RestBody> {
    prop_oneof![
        8 => (any::<u64>(), hostile_pool()).prop_map(|(seed, pool)| RestBody::Fields(seed, pool)),
        2 => prop_oneof![
            "(?s:.{0,100})",
            Just("[]".to_owned()),
            Just("null".to_owned()),
            Just("{\"username\": \"a\", \"username\": \"b\"}".to_owned()),
            Just("{\"username\": \"\u{27EA}uname\u{27EB}\", \"password\": \"\u{27EA}pw\u{27EB}\"".to_owned()),
            Just("{\"password\": \"\\ud800\u{27EA}pw\u{27EB}\"}".to_owned()),
            (1usize..20_000).prop_map(|n| "[".repeat(n)),
        ]
        .prop_map(RestBody::Raw),
        1 => prop_oneof![-16i64..=16, -2000i64..=2000].prop_map(RestBody::Huge),
    ]
    .boxed()
}

/// Bodies of the newer endpoints: fields of the endpoint with valid and
/// hostile values (`world/rest_bodies.rs` builds them), or broken JSON
/// aimed at the parts of `JsonObject` the older bodies do not reach.
fn endpoint_body() -> BoxedStrategy<RestBody> {
    let nested = |open: &'static str, close: &'static str, field: &'static str| {
        (1usize..20_000).prop_map(move |n| {
            format!(
                "{{\"{field}\": {}\"x\"{}}}",
                open.repeat(n),
                close.repeat(n)
            )
        })
    };
    prop_oneof![
        12 => (any::<u64>(), hostile_pool()).prop_map(|(seed, pool)| RestBody::Fields(seed, pool)),
        2 => prop_oneof![
            "(?s:.{0,100})",
            prop::sample::select(&[
                "",
                "[]",
                "null",
                "0",
                "\"{}\"",
                "{}",
                "{} {}",
                "{\"name\": \"a\"} x",
                "\u{FEFF}{}",
                "{\"name\": \"a\",}",
                "{\"name\": 'a'}",
                "{name: \"a\"}",
                "{\"name\": \"\\ud800\"}",
                "{\"detail\": \"\\udc00\\ud800\"}",
                "{\"line_secret\": \"\u{27EA}lone\u{27EB}\", \"line_token\": \"t\"}",
                "{\"password\": \"\u{27EA}newpw\u{27EB}\", \"password\": 5}",
                "{\"permission_ids\": [\"\u{27EA}cust\u{27EB}\"], \"permission_ids\": \"x\"}",
                "{\"expire\": 86400, \"expire\": -1}",
                "{\"expire\": 1e999}",
                "{\"expire\": -0.0}",
                "{\"expire\": 9223372036854775808}",
                "{\"name\": \"\\u0000\", \"detail\": \"\\u0000\\u0000\"}",
                "{\"webhook_method\": \"POST\", \"webhook_uri\": \"\\u0000\"}",
            ][..])
            .prop_map(str::to_owned),
            (1usize..20_000).prop_map(|n| "[".repeat(n)),
            nested("[", "]", "permission_ids"),
            nested("{\"a\": ", "}", "name"),
            nested("[", "]", "expire"),
        ]
        .prop_map(RestBody::Raw),
        1 => prop::sample::select(BYTES)
            .prop_map(RestBody::Bytes),
        1 => prop_oneof![-16i64..=16, -2000i64..=2000].prop_map(RestBody::Huge),
    ]
    .boxed()
}

/// Bodies that are not UTF-8, or hold bytes JSON allows only escaped.
const BYTES: &[&[u8]] = &[
    b"{\"name\": \"\xff\xfe\"}",
    b"{\"detail\": \"a\x00b\"}",
    b"{\"password\": \"\x00\x00\x00\x00\x00\x00\x00\x00\"}",
    b"{\"line_secret\": \"\xc0\xae\", \"line_token\": \"t\"}",
    b"\x00",
    b"{\"name\"\x00: \"a\"}",
];

fn page_pair() -> BoxedStrategy<(String, String)> {
    prop_oneof![
        3 => prop::sample::select(&["1", "5", "100", "0", "101", "-1", "1e3", "abc", "99999999999999999999", "", " 5", "5 "][..])
            .prop_map(|v| ("page_size".to_owned(), v.to_owned())),
        2 => prop_oneof![
            Just("2022-02-01 00:00:00.000000_5e4a0680-804e-11ec-8477-2fea5968d85b".to_owned()),
            Just("2022-02-01 00:00:00.000000".to_owned()),
            Just("9999-01-01 00:00:00.000000_00000000-0000-0000-0000-000000000000".to_owned()),
            Just("2022-02-30 25:61:61.000000".to_owned()),
            Just("nope".to_owned()),
            hostile(),
        ]
        .prop_map(|v| ("page_token".to_owned(), v)),
        1 => (
            prop::sample::select(&["PAGE_SIZE", "page_size[]", "token", "accesskey", "x", ""][..]),
            hostile()
        )
            .prop_map(|(k, v)| (k.to_owned(), v)),
    ]
    .boxed()
}

fn list_query() -> BoxedStrategy<Vec<(String, String)>> {
    prop::collection::vec(page_pair(), 0..4).boxed()
}

/// `GET /v1.0/accesskeys`' parameters: paging, and whose keys.
fn key_list_query() -> BoxedStrategy<Vec<(String, String)>> {
    let customer = prop_oneof![
        4 => prop::sample::select(&[
            "\u{27EA}cust\u{27EB}",
            "\u{27EA}other\u{27EB}",
            "\u{27EA}platform\u{27EB}",
            "\u{27EA}key\u{27EB}",
        ][..])
        .prop_map(str::to_owned),
        1 => any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).to_string()),
        1 => prop::sample::select(&[
            "",
            "not-a-uuid",
            "{\u{27EA}cust\u{27EB}}",
            "urn:uuid:\u{27EA}cust\u{27EB}",
            " \u{27EA}cust\u{27EB}",
            "\u{27EA}cust\u{27EB}\u{0}",
            "\u{27EA}cust\u{27EB},\u{27EA}other\u{27EB}",
            "00000000-0000-0000-0000-00000000000G",
        ][..])
        .prop_map(str::to_owned),
        1 => hostile(),
    ]
    .prop_map(|v| ("customer_id".to_owned(), v));
    prop::collection::vec(prop_oneof![3 => page_pair(), 2 => customer], 0..4).boxed()
}

fn endpoint_call() -> BoxedStrategy<RestCall> {
    let call = |endpoint, id, query, body| {
        RestCall::Endpoint(Call {
            endpoint,
            id,
            query,
            body,
        })
    };
    // A customer's ids, and now and then ids of something else.
    let customers = || path_id_of(&["cust", "cust", "other", "platform", "cadmin"]);
    // Never the platform's: its guest agent is the bootstrap admin, whose
    // token is the one the world repairs everything else with.
    let passwords = || path_id_of(&["cust", "cust", "other", "cadmin", "key"]);
    let keys = || path_id_of(&["key", "key", "deadkey", "cust"]);
    prop_oneof![
        3 => (customers(), endpoint_body())
            .prop_map(move |(id, body)| call(Endpoint::UpdateCustomer, Some(id), Vec::new(), Some(body))),
        2 => (customers(), endpoint_body())
            .prop_map(move |(id, body)| call(Endpoint::LineInfo, Some(id), Vec::new(), Some(body))),
        2 => (customers(), endpoint_body())
            .prop_map(move |(id, body)| call(Endpoint::PermissionIds, Some(id), Vec::new(), Some(body))),
        2 => (passwords(), endpoint_body())
            .prop_map(move |(id, body)| call(Endpoint::Password, Some(id), Vec::new(), Some(body))),
        1 => Just(call(Endpoint::GetOwn, None, Vec::new(), None)),
        2 => endpoint_body().prop_map(move |body| call(Endpoint::UpdateOwn, None, Vec::new(), Some(body))),
        2 => key_list_query().prop_map(move |query| call(Endpoint::ListKeys, None, query, None)),
        3 => endpoint_body().prop_map(move |body| call(Endpoint::CreateKey, None, Vec::new(), Some(body))),
        1 => keys().prop_map(move |id| call(Endpoint::GetKey, Some(id), Vec::new(), None)),
        2 => (keys(), endpoint_body())
            .prop_map(move |(id, body)| call(Endpoint::UpdateKey, Some(id), Vec::new(), Some(body))),
        1 => keys().prop_map(move |id| call(Endpoint::DeleteKey, Some(id), Vec::new(), None)),
    ]
    .boxed()
}

fn credential_place() -> BoxedStrategy<CredentialPlace> {
    prop_oneof![
        10 => Just(CredentialPlace::Header),
        3 => Just(CredentialPlace::TokenParameter),
        2 => Just(CredentialPlace::AccessKeyParameter),
        1 => Just(CredentialPlace::HeaderAndSameToken),
        1 => Just(CredentialPlace::Conflicting),
    ]
    .boxed()
}

pub fn rest() -> BoxedStrategy<super::Kind> {
    let call = prop_oneof![
        4 => rest_body().prop_map(RestCall::Login),
        5 => list_query().prop_map(RestCall::List),
        5 => path_id().prop_map(RestCall::Get),
        4 => rest_body().prop_map(RestCall::Create),
        2 => path_id().prop_map(RestCall::Delete),
        1 => path_id().prop_map(RestCall::Put),
        1 => (
            prop::sample::select(&["GET", "POST", "DELETE", "PATCH", "PUT", "HEAD"][..]),
            prop::sample::select(&[
                "/v1.0",
                "/v1.0/",
                "/v1.0/customers/",
                "/v1.0/customers/a/b",
                "/v1.0/accesskeys",
                "/v1.0/openapi.json",
                "/auth/login",
                "/auth/logout",
                "/auth/login/x",
                "/v1.0/%2e%2e/graphql",
                "/graphql/x",
                "/healthz",
                "/readyz",
                "/metrics",
            ][..])
        )
            .prop_map(|(method, path)| RestCall::Path(method, path)),
        1 => "[ -~]{0,40}".prop_map(RestCall::Preflight),
        16 => endpoint_call(),
    ];
    (call, credential_place())
        .prop_map(|(call, place)| super::Kind::Rest(call, place))
        .boxed()
}
