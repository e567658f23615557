//! Cases: who asks (no credential, a malformed header, forged tokens, a
//! super admin, a customer admin, a plain agent, an access key, a revoked
//! token, a revoked key), from where (`X-Forwarded-For`), and how: POSTed
//! JSON (single, batches up to past MAX_BATCH_SIZE, broken envelopes, wrong
//! media types, `Accept: application/graphql-response+json`), GET with a
//! query string, automatic persisted queries, and the REST endpoints
//! (their calls live in `rest`).

mod rest;

use proptest::prelude::*;

pub use self::rest::{CredentialPlace, Endpoint, PathId, RestBody, RestCall};
use super::documents::{Doc, document, small_document};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Nobody,
    /// An `Authorization` header that is not `Bearer <token>`.
    Malformed,
    /// A bearer token the server never issued.
    Forged,
    SuperAdmin,
    /// The guest agent of the fuzzed customer (CUSTOMER_ADMIN).
    CustomerAdmin,
    /// A CUSTOMER_AGENT of the fuzzed customer.
    Agent,
    AccessKey,
    /// A login token that was logged out.
    Revoked,
    /// An access key that was deleted.
    DeadKey,
}

/// The principal of a case; `variant` picks the spelling of the header.
#[derive(Clone, Copy, Debug)]
pub struct Who {
    pub role: Role,
    pub variant: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentType {
    Json,
    JsonCharset,
    JsonUpper,
    Missing,
    TextPlain,
    Graphql,
    Form,
}

impl ContentType {
    pub fn value(self) -> Option<&'static str> {
        match self {
            Self::Json => Some("application/json"),
            Self::JsonCharset => Some("application/json; charset=utf-8"),
            Self::JsonUpper => Some("APPLICATION/JSON"),
            Self::Missing => None,
            Self::TextPlain => Some("text/plain"),
            Self::Graphql => Some("application/graphql"),
            Self::Form => Some("application/x-www-form-urlencoded"),
        }
    }

    pub fn is_json(self) -> bool {
        matches!(self, Self::Json | Self::JsonCharset | Self::JsonUpper)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accept {
    None,
    Json,
    GraphqlResponse,
    Html,
    Both,
}

impl Accept {
    pub fn value(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::Json => Some("application/json"),
            Self::GraphqlResponse => Some("application/graphql-response+json"),
            Self::Html => Some("text/html,application/xhtml+xml"),
            Self::Both => Some("application/graphql-response+json, application/json;q=0.9"),
        }
    }

    pub fn graphql_response(self) -> bool {
        matches!(self, Self::GraphqlResponse | Self::Both)
    }
}

/// How a single operation is wrapped in its JSON object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Envelope {
    Standard,
    NoVariables,
    NullMembers,
    /// `variables` as a JSON-encoded string holding a password, as clients
    /// that stringify twice send it.
    StringVariables,
    ArrayVariables,
    NonStringOperationName,
    ExtraMembers,
    NullQuery,
    /// A lone UTF-16 surrogate escape in the JSON text.
    LoneSurrogate,
}

impl Envelope {
    pub fn is_standard(self) -> bool {
        matches!(
            self,
            Self::Standard | Self::NoVariables | Self::ExtraMembers
        )
    }
}

#[derive(Clone, Debug)]
pub enum RawBody {
    Empty,
    Text(String),
    DeepArray(usize),
    DuplicateKeys,
    Bom,
    TrailingGarbage,
    NonUtf8,
    Scalar(&'static str),
}

#[derive(Clone, Debug)]
pub enum PostBody {
    Single(Doc, Envelope),
    Batch(Vec<Doc>),
    Raw(RawBody),
}

#[derive(Clone, Debug)]
pub enum ApqMode {
    /// The document with its hash, then the hash alone.
    RegisterThenUse,
    WrongHash,
    BadVersion(u8),
    UnknownHash(u64),
    Malformed(u8),
}

#[derive(Clone, Debug)]
pub enum Kind {
    Post {
        body: PostBody,
        content_type: ContentType,
        accept: Accept,
    },
    Get {
        doc: Doc,
        accept: Accept,
        snake_case_name: bool,
        /// `variables` JSON-encoded twice (a string), with a password in it.
        string_variables: bool,
    },
    GetRaw(String),
    Apq {
        doc: Doc,
        mode: ApqMode,
        register_with_get: bool,
        use_with_get: bool,
    },
    Rest(RestCall, CredentialPlace),
}

#[derive(Clone, Debug)]
pub struct Case {
    pub who: Who,
    pub forwarded_for: Option<String>,
    /// An `X-Request-Id` of the fuzzer's choosing instead of `fuzz-<case>`.
    pub request_id: Option<String>,
    pub kind: Kind,
}

impl Case {
    /// The documents the case sends.
    pub fn docs(&self) -> Vec<&Doc> {
        match &self.kind {
            Kind::Post {
                body: PostBody::Single(doc, _),
                ..
            }
            | Kind::Get { doc, .. }
            | Kind::Apq { doc, .. } => vec![doc],
            Kind::Post {
                body: PostBody::Batch(docs),
                ..
            } => docs.iter().collect(),
            _ => Vec::new(),
        }
    }

    /// Whether the case may have logged out, changed a password or deleted
    /// something the world's principals depend on.
    pub fn may_destroy(&self) -> bool {
        const WORDS: [&str; 5] = [
            "logout",
            "changePassword",
            "setAgentPassword",
            "deleteCustomer",
            "deleteAccessKey",
        ];
        matches!(&self.kind, Kind::Rest(call, _) if call.may_destroy())
            || self
                .docs()
                .iter()
                .any(|doc| WORDS.iter().any(|w| doc.text.contains(w)))
    }

    /// The transport, for the breakdown.
    pub fn transport(&self) -> &'static str {
        match &self.kind {
            Kind::Post {
                body: PostBody::Batch(_),
                ..
            } => "POST batch",
            Kind::Post {
                body: PostBody::Raw(_),
                ..
            } => "POST raw",
            Kind::Post { content_type, .. } if !content_type.is_json() => "POST wrong type",
            Kind::Post {
                body: PostBody::Single(_, envelope),
                ..
            } if !envelope.is_standard() => "POST odd envelope",
            Kind::Post { accept, .. } if accept.graphql_response() => "POST graphql-response",
            Kind::Post { .. } => "POST",
            Kind::Get { .. } | Kind::GetRaw(_) => "GET",
            Kind::Apq { .. } => "APQ",
            Kind::Rest(..) => "REST",
        }
    }

    pub fn family(&self) -> &'static str {
        match self.docs().first() {
            Some(doc) => doc.family,
            None => match &self.kind {
                Kind::Rest(call, _) => call.family(),
                _ => "raw",
            },
        }
    }
}

fn who() -> BoxedStrategy<Who> {
    let role = prop_oneof![
        6 => Just(Role::SuperAdmin),
        4 => Just(Role::CustomerAdmin),
        2 => Just(Role::Agent),
        2 => Just(Role::AccessKey),
        2 => Just(Role::Nobody),
        1 => Just(Role::Malformed),
        1 => Just(Role::Forged),
        1 => Just(Role::Revoked),
        1 => Just(Role::DeadKey),
    ];
    (role, any::<u8>())
        .prop_map(|(role, variant)| Who { role, variant })
        .boxed()
}

fn forwarded_for() -> BoxedStrategy<Option<String>> {
    prop_oneof![
        8 => Just(None),
        1 => any::<[u8; 4]>().prop_map(|b| Some(format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3]))),
        1 => any::<u128>().prop_map(|n| Some(std::net::Ipv6Addr::from(n).to_string())),
        1 => prop::sample::select(&[
            "not an address",
            "1.2.3.4, 5.6.7.8, ::1",
            "999.1.1.1",
            ",,,",
            "[::1]:80",
            "0.0.0.0",
            "127.0.0.1 ",
        ][..])
        .prop_map(|s| Some(s.to_owned())),
    ]
    .boxed()
}

fn request_id() -> BoxedStrategy<Option<String>> {
    prop_oneof![
        12 => Just(None),
        1 => "[ -~]{0,200}".prop_map(Some),
        1 => Just(Some("x".repeat(129))),
    ]
    .boxed()
}

fn accept() -> BoxedStrategy<Accept> {
    prop_oneof![
        10 => Just(Accept::None),
        2 => Just(Accept::Json),
        5 => Just(Accept::GraphqlResponse),
        1 => Just(Accept::Html),
        1 => Just(Accept::Both),
    ]
    .boxed()
}

fn content_type() -> BoxedStrategy<ContentType> {
    prop_oneof![
        60 => Just(ContentType::Json),
        3 => Just(ContentType::JsonCharset),
        1 => Just(ContentType::JsonUpper),
        1 => Just(ContentType::Missing),
        1 => Just(ContentType::TextPlain),
        1 => Just(ContentType::Graphql),
        1 => Just(ContentType::Form),
    ]
    .boxed()
}

fn envelope() -> BoxedStrategy<Envelope> {
    prop_oneof![
        45 => Just(Envelope::Standard),
        2 => Just(Envelope::NoVariables),
        1 => Just(Envelope::NullMembers),
        1 => Just(Envelope::StringVariables),
        1 => Just(Envelope::ArrayVariables),
        1 => Just(Envelope::NonStringOperationName),
        2 => Just(Envelope::ExtraMembers),
        1 => Just(Envelope::NullQuery),
        1 => Just(Envelope::LoneSurrogate),
    ]
    .boxed()
}

fn raw_body() -> BoxedStrategy<RawBody> {
    prop_oneof![
        Just(RawBody::Empty),
        "(?s:.{0,200})".prop_map(RawBody::Text),
        prop_oneof![1usize..200, 1000usize..100_000].prop_map(RawBody::DeepArray),
        Just(RawBody::DuplicateKeys),
        Just(RawBody::Bom),
        Just(RawBody::TrailingGarbage),
        Just(RawBody::NonUtf8),
        prop::sample::select(
            &[
                "null",
                "42",
                "\"{ me { permissions } }\"",
                "true",
                "[]",
                "[[]]",
                "[1]",
                "{}"
            ][..]
        )
        .prop_map(RawBody::Scalar),
    ]
    .boxed()
}

fn post() -> BoxedStrategy<Kind> {
    let body = prop_oneof![
        30 => (document(), envelope()).prop_map(|(doc, envelope)| PostBody::Single(doc, envelope)),
        5 => prop_oneof![
            6 => prop::collection::vec(small_document(), 1..=10),
            1 => prop::collection::vec(small_document(), 11..=14),
        ]
        .prop_map(PostBody::Batch),
        2 => raw_body().prop_map(PostBody::Raw),
    ];
    (body, content_type(), accept())
        .prop_map(|(body, content_type, accept)| Kind::Post {
            body,
            content_type,
            accept,
        })
        .boxed()
}

fn get() -> BoxedStrategy<Kind> {
    prop_oneof![
        8 => (small_document(), accept(), any::<bool>(), prop::bool::weighted(0.1)).prop_map(
            |(doc, accept, snake, string_variables)| Kind::Get {
                doc,
                accept,
                snake_case_name: snake,
                string_variables,
            }
        ),
        1 => prop_oneof![
            prop::sample::select(&[
                "query=%FF%FE",
                "query=%",
                "query=%%%41",
                "query=%7B__typename%7D&query=%7Bme%7Bpermissions%7D%7D",
                "variables=%7B&query=%7B__typename%7D",
                "query=%7B__typename%7D&variables=%22\u{27EA}pw\u{27EB}%22",
                "query=%7B__typename%7D&variables=%5B1%5D",
                "query=%7B__typename%7D&extensions=%7B%22persistedQuery%22%3A1%7D",
                "query=%7B__typename%7D&operationName=%00",
                "&&&=&=",
                "",
                "query",
                "query=mutation%7Blogout%7Brevoked%7D%7D",
            ][..])
            .prop_map(str::to_owned),
            "[ -~]{0,100}",
            (1usize..3000).prop_map(|n| format!("query={}", "%5B".repeat(n))),
        ]
        .prop_map(Kind::GetRaw),
    ]
    .boxed()
}

fn apq() -> BoxedStrategy<Kind> {
    let mode = prop_oneof![
        8 => Just(ApqMode::RegisterThenUse),
        1 => Just(ApqMode::WrongHash),
        1 => (0u8..6).prop_map(ApqMode::BadVersion),
        1 => any::<u64>().prop_map(ApqMode::UnknownHash),
        1 => (0u8..5).prop_map(ApqMode::Malformed),
    ];
    (small_document(), mode, any::<bool>(), any::<bool>())
        .prop_map(|(doc, mode, register_with_get, use_with_get)| Kind::Apq {
            doc,
            mode,
            register_with_get,
            use_with_get,
        })
        .boxed()
}

pub fn case() -> BoxedStrategy<Case> {
    let kind = prop_oneof![
        64 => post(),
        10 => get(),
        8 => apq(),
        30 => rest::rest(),
    ];
    (who(), forwarded_for(), request_id(), kind)
        .prop_map(|(who, forwarded_for, request_id, kind)| Case {
            who,
            forwarded_for,
            request_id,
            kind,
        })
        .boxed()
}
