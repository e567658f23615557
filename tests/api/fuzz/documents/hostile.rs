//! Documents no client should send: garbage, and passwords placed where a
//! careless server would quote them back in an error.

use proptest::prelude::*;

use super::super::values::mark;
use super::{Doc, Expect};

pub(super) fn garbage() -> BoxedStrategy<Doc> {
    prop_oneof![
        "(?s:.{0,400})",
        "[{}()\\[\\]$:!@=|&.#\" a-zA-Z0-9_\\\\\n]{0,400}",
        prop::collection::vec(
            prop::sample::select(
                &[
                    "query",
                    "mutation",
                    "subscription",
                    "fragment",
                    "on",
                    "{",
                    "}",
                    "(",
                    ")",
                    "[",
                    "]",
                    "$v",
                    ":",
                    "!",
                    "=",
                    "@include",
                    "@skip",
                    "...",
                    "\"s\"",
                    "\"\"\"",
                    "# c\n",
                    "1",
                    "-1.5e9",
                    "me",
                    "customers",
                    "login",
                    "F",
                    "Int",
                    "null",
                    "true",
                    "__typename",
                    "__schema",
                ][..]
            ),
            0..200
        )
        .prop_map(|tokens| tokens.join(" ")),
    ]
    .prop_map(|text| Doc::plain("garbage", text, Expect::Any))
    .boxed()
}

/// Passwords where a careless server would quote them back: in variables
/// declared with the wrong type, or of the wrong JSON type, in literals of
/// the wrong shape. The response must not carry them.
pub(super) fn secret_probe() -> BoxedStrategy<Doc> {
    (0..7usize, prop::sample::select(&["pw", "newpw", "apw"][..]))
        .prop_map(|(kind, secret)| {
            let m = mark(secret);
            let login = |declared: &str| {
                format!(
                    "mutation($p: {declared}) {{ login(input: {{username: \"{}\", password: $p}}) {{ token }} }}",
                    mark("uname")
                )
            };
            let (text, variables) = match kind {
                0 => (login("Int"), Some(serde_json::json!({ "p": m }))),
                1 => (login("String!"), Some(serde_json::json!({ "p": [m] }))),
                2 => (login("[Int!]"), Some(serde_json::json!({ "p": [m] }))),
                3 => (
                    "mutation($i: LoginInput!) { login(input: $i) { token } }".to_owned(),
                    Some(serde_json::json!({ "i": { "username": mark("uname"), "password": { "value": m } } })),
                ),
                4 => (
                    format!(
                        "mutation {{ login(input: {{username: \"{}\", password: [\"{m}\"]}}) {{ token }} }}",
                        mark("uname")
                    ),
                    None,
                ),
                5 => (
                    format!(
                        "mutation($p: Boolean!) {{ changePassword(input: {{currentPassword: $p, newPassword: \"{}\"}}) {{ agent {{ id }} }} }}",
                        mark("newpw")
                    ),
                    Some(serde_json::json!({ "p": m })),
                ),
                _ => (
                    format!(
                        "mutation($p: WebhookMethod) {{ createCustomer(input: {{username: \"{}\", password: $p}}) {{ customer {{ id }} }} }}",
                        mark("fresh")
                    ),
                    Some(serde_json::json!({ "p": m })),
                ),
            };
            Doc {
                variables,
                mutation: true,
                ..Doc::plain("secret probe", text, Expect::Any)
            }
        })
        .boxed()
}
