//! Documents around the size and breadth caps: MAX_TOKENS and
//! MAX_BODY_BYTES give or take a few, aliases and root fields around
//! theirs, introspection depth, and brackets that must not count. Off-by-one
//! errors in a limit show only right at it.

use proptest::prelude::*;

use super::super::values::{STYLES, StrStyle, gql_string, mark, scan};
use super::{
    Doc, Expect, MAX_ALIASES, MAX_INTROSPECTION_DEPTH, MAX_INTROSPECTION_LISTS, MAX_ROOT_FIELDS,
    MAX_TOKENS, text_limits,
};

/// Documents of MAX_TOKENS tokens plus `delta`.
pub(super) fn token_limit() -> BoxedStrategy<Doc> {
    (-25i64..=25, 0..3usize).prop_map(|(delta, kind)| {
        let item = ["1", "\"a\"", "A"][kind];
        let template = |n: usize| {
            format!(
                "mutation {{ createCustomer(input: {{username: \"fztokens\", password: \"password-1\", permissionIds: [{}]}}) {{ customer {{ id }} }} }}",
                vec![item; n].join(" ")
            )
        };
        let (_, base) = scan(&template(0));
        let n = (MAX_TOKENS as i64 - base as i64 + delta).max(0) as usize;
        let text = template(n);
        let (_, tokens) = scan(&text);
        let expect = if tokens > MAX_TOKENS {
            Expect::Limit(vec!["TOKENS"])
        } else {
            Expect::NotLimit(vec!["TOKENS", "NESTING"])
        };
        Doc {
            mutation: true,
            ..Doc::plain("token limit", text, expect)
        }
    })
    .boxed()
}

/// Documents whose POSTed body is MAX_BODY_BYTES plus `delta`, the bulk in
/// a comment, a block string or a string, full of brackets and quotes.
pub(super) fn body_near_limit() -> BoxedStrategy<Doc> {
    let delta = prop_oneof![
        3 => -16i64..=16,
        1 => -3000i64..=3000,
    ];
    (delta, 0..3usize)
        .prop_map(|(delta, kind)| {
            let pad = mark("pad");
            let text = match kind {
                0 => format!("# {pad}\nquery {{ me {{ permissions }} }}"),
                1 => format!(
                    "query {{ customers(first: 1, after: \"\"\"{pad}\"\"\") {{ totalCount }} }}"
                ),
                _ => format!("query {{ customers(first: 1, after: \"{pad}\") {{ totalCount }} }}"),
            };
            Doc {
                pad: Some(delta),
                ..Doc::plain(
                    "body size",
                    text,
                    Expect::NotLimit(vec!["NESTING", "TOKENS"]),
                )
            }
        })
        .boxed()
}

/// The filler of `⟪pad⟫` in a document of kind `text` (comment, block
/// string or string): one unit, repeated.
pub fn pad_unit(text: &str) -> &'static str {
    if text.starts_with('#') {
        "[{( \"\"\" x "
    } else if text.contains("\"\"\"") {
        "[{(\" \\\"\"\" x"
    } else {
        "[{(\\\" x"
    }
}

/// Aliases, root fields, repeated arguments and unknown fields around
/// their caps (the last two draw an error each: the response keeps 21).
pub(super) fn breadth() -> BoxedStrategy<Doc> {
    (0..5usize, 1usize..=45, 1usize..=1500).prop_map(|(kind, n, many)| match kind {
        0 => {
            let fields: Vec<String> = (0..n).map(|i| format!("a{i}: me {{ permissions }}")).collect();
            let expect = if n > MAX_ALIASES {
                Expect::Limit(vec!["ALIASES"])
            } else if n > MAX_ROOT_FIELDS {
                Expect::Limit(vec!["ROOT_FIELDS"])
            } else {
                Expect::NotLimit(vec!["ALIASES", "ROOT_FIELDS"])
            };
            Doc::plain("aliases", format!("{{ {} }}", fields.join(" ")), expect)
        }
        1 => {
            let text = format!("{{ {} }}", "me { permissions } ".repeat(n));
            let expect = if n > MAX_ROOT_FIELDS {
                Expect::Limit(vec!["ROOT_FIELDS"])
            } else {
                Expect::NotLimit(vec!["ROOT_FIELDS"])
            };
            Doc::plain("root fields", text, expect)
        }
        2 => {
            let text = format!(
                "{{ customers({}) {{ totalCount }} }}",
                "first: 1, ".repeat(many)
            );
            let expect = text_limits(&text, Expect::Any);
            Doc::plain("repeated arguments", text, expect)
        }
        3 => {
            let fields: Vec<String> = (0..many).map(|i| format!("f{i}")).collect();
            Doc::plain(
                "unknown fields",
                format!("{{ me {{ {} }} }}", fields.join(" ")),
                Expect::Any,
            )
        }
        _ => {
            let first = [10, 50, 100][n % 3];
            let k = 1 + n % 5;
            let fields: Vec<String> = (0..k)
                .map(|i| {
                    format!(
                        "c{i}: customers(first: {first}) {{ nodes {{ id username guestAgent {{ id username }} }} edges {{ cursor }} }}"
                    )
                })
                .collect();
            Doc::plain("complexity", format!("{{ {} }}", fields.join(" ")), Expect::Any)
        }
    })
    .boxed()
}

/// Introspection nested `depth` deep through `ofType`, with `lists`
/// list fields on the path.
pub(super) fn introspection() -> BoxedStrategy<Doc> {
    (0usize..=28, 0usize..=5, any::<bool>())
        .prop_map(|(of_type, lists, schema)| {
            let list_path = ["types", "fields", "args", "inputFields", "enumValues"];
            let (mut open, mut depth, mut list_count) = (String::new(), 1usize, 0usize);
            if schema {
                open.push_str("__schema { ");
            } else {
                open.push_str("__type(name: \"Customer\") { ");
            }
            let path: Vec<&str> = if schema {
                std::iter::once("types")
                    .chain(list_path[1..].iter().copied().take(lists.saturating_sub(1)))
                    .collect()
            } else {
                list_path[1..].iter().copied().take(lists).collect()
            };
            for field in &path {
                open.push_str(field);
                open.push_str(" { ");
                depth += 1;
                list_count += 1;
            }
            open.push_str("type { ");
            depth += 1;
            for _ in 0..of_type {
                open.push_str("ofType { ");
                depth += 1;
            }
            open.push_str("name");
            depth += 1;
            let (nesting, _) = scan(&format!("{{ {open}"));
            let text = format!("{{ {open}{} }}", " }".repeat(nesting - 1));
            // `enumValues { type` is not valid, but the limits come first.
            let expect = text_limits(
                &text,
                if depth > MAX_INTROSPECTION_DEPTH || list_count > MAX_INTROSPECTION_LISTS {
                    Expect::Limit(vec!["INTROSPECTION_DEPTH"])
                } else {
                    Expect::Any
                },
            );
            Doc::plain("introspection", text, expect)
        })
        .boxed()
}

/// Brackets that must not count: in strings (after escaped quotes and
/// escaped backslashes), block strings and comments.
pub(super) fn hidden_brackets() -> BoxedStrategy<Doc> {
    (33usize..=3000, 0..4usize).prop_map(|(n, kind)| {
        let brackets = "[{(".repeat(n / 3 + 1);
        let text = match kind {
            0 => format!(
                "{{ customers(first: 1, after: {}) {{ totalCount }} }}",
                gql_string(&format!("\\\"{brackets}"), StrStyle::Plain)
            ),
            1 => format!(
                "{{ customers(first: 1, after: \"\"\"{brackets} \\\"\"\" {brackets}\"\"\") {{ totalCount }} }}"
            ),
            2 => format!("# {brackets}\n{{ me {{ permissions }} }} # {brackets}"),
            _ => format!(
                "{{ a: customers(first: 1, after: \"x\\\\\") {{ totalCount }} b: customers(first: 1, after: {}) {{ totalCount }} }}",
                gql_string(&brackets, STYLES[n % 4])
            ),
        };
        let expect = text_limits(&text, Expect::NotLimit(vec!["NESTING"]));
        Doc::plain("hidden brackets", text, expect)
    })
    .boxed()
}
