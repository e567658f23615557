//! Shapes aimed at the depth and fragment limits: deep selections (with
//! and without bracket nesting), deep literals, fragment fan-out, chains
//! and cycles. Where the documented limits determine the outcome, the
//! document says which.

use proptest::prelude::*;

use super::super::values::{Rng, scan};
use super::{Doc, Expect, MAX_QUERY_DEPTH, MAX_ROOT_FIELDS, MAX_SELECTIONS, text_limits};

const NAMES: &[&str] = &[
    "customers",
    "edges",
    "node",
    "guestAgent",
    "me",
    "customer",
    "agent",
    "x",
    "__typename",
];

/// Selections nested `depth` deep: braces, inline fragments between the
/// levels, or a chain of fragments each adding one level (depth without
/// bracket nesting).
pub(super) fn deep_selection() -> BoxedStrategy<Doc> {
    let depth = prop_oneof![
        2 => 1usize..=12,
        3 => 13usize..=32,
        1 => 33usize..=40,
        1 => 100usize..=3000,
    ];
    (depth, 0..3usize, any::<u64>())
        .prop_map(|(depth, style, seed)| {
            let mut rng = Rng::new(seed);
            let mut names: Vec<&str> = (0..depth).map(|_| *rng.pick(NAMES)).collect();
            names[depth - 1] = "id";
            match style {
                0 | 1 => {
                    let mut text = String::new();
                    for name in &names[..depth - 1] {
                        text.push_str(name);
                        text.push_str(if style == 1 && rng.one_in(2) {
                            " { ... on Query { "
                        } else {
                            " { "
                        });
                    }
                    text.push_str("id");
                    let (nesting, _) = scan(&format!("{{ {text}"));
                    text.push_str(&" }".repeat(nesting - 1));
                    let text = format!("{{ {text} }}");
                    let expect = text_limits(
                        &text,
                        if depth > MAX_QUERY_DEPTH {
                            Expect::Limit(vec!["DEPTH"])
                        } else {
                            Expect::Any
                        },
                    );
                    Doc::plain("deep selection", text, expect)
                }
                _ => {
                    let mut text = "query { ...D0 }\n".to_owned();
                    for (i, name) in names.iter().enumerate().take(depth - 1) {
                        text.push_str(&format!(
                            "fragment D{i} on Query {{ {name} {{ ...D{} }} }}\n",
                            i + 1
                        ));
                    }
                    text.push_str(&format!("fragment D{} on Query {{ id }}\n", depth - 1));
                    // Every level holds a field and a spread.
                    let selections = 2 * depth as u64;
                    let expect = text_limits(
                        &text,
                        if selections > MAX_SELECTIONS {
                            Expect::Limit(vec!["SELECTIONS"])
                        } else if depth > MAX_QUERY_DEPTH {
                            Expect::Limit(vec!["DEPTH"])
                        } else {
                            Expect::Any
                        },
                    );
                    Doc::plain("deep selection", text, expect)
                }
            }
        })
        .boxed()
}

/// List and object literals, list types and defaults nested `depth` deep,
/// balanced or not.
pub(super) fn deep_literal() -> BoxedStrategy<Doc> {
    let depth = prop_oneof![
        3 => 1usize..=30,
        2 => 31usize..=40,
        2 => 100usize..=5000,
        1 => 20_000usize..=120_000,
    ];
    (depth, 0..7usize, any::<bool>()).prop_map(|(depth, kind, balanced)| {
        let nest = |open: &str, inner: &str, close: &str| {
            let closing = if balanced {
                close.repeat(depth)
            } else {
                String::new()
            };
            format!("{}{inner}{closing}", open.repeat(depth))
        };
        let text = match kind {
            0 => format!(
                "{{ customers(first: 1, after: {}) {{ totalCount }} }}",
                nest("[", "\"x\"", "]")
            ),
            1 => format!(
                "{{ customers(after: {}) {{ totalCount }} }}",
                nest("{a: ", "1", "}")
            ),
            2 => format!(
                "query($v: {}) {{ me {{ permissions }} }}",
                nest("[", "Int", "]")
            ),
            3 => format!(
                "{{ me @include(if: {}) {{ permissions }} }}",
                nest("[", "true", "]")
            ),
            4 => format!(
                "query($v: [Int] = {}) {{ customers(first: 1) {{ totalCount }} }}",
                nest("[", "1", "]")
            ),
            5 => format!(
                "mutation {{ createCustomer(input: {{username: \"fzdeep\", password: \"password-1\", permissionIds: {}}}) {{ customer {{ id }} }} }}",
                nest("[{a: ", "\"00000000-0000-0000-0000-000000000000\"", "}]")
            ),
            _ => format!(
                "{{ customers(first: 1) {} {{ totalCount }} }}",
                nest("(", "", ")")
            ),
        };
        let expect = text_limits(&text, Expect::Any);
        let mutation = kind == 5;
        Doc {
            mutation,
            ..Doc::plain("deep literal", text, expect)
        }
    })
    .boxed()
}

/// Fragment graphs: chains with fan-out (`F0 { ...F1 ...F1 }`, 2^n
/// selections once expanded), long narrow chains, cycles of every shape,
/// unknown and mistyped fragments.
pub(super) fn fragment_graph() -> BoxedStrategy<Doc> {
    (0..9usize, 1usize..=40, 1usize..=4, 2usize..=50, 400usize..=1200).prop_map(
        |(kind, length, fanout, cycle, chain)| match kind {
            0..=2 => {
                let mut text = "query { ...F0 }\n".to_owned();
                for i in 0..length - 1 {
                    let spreads = format!("...F{} ", i + 1).repeat(fanout);
                    text.push_str(&format!("fragment F{i} on Query {{ {spreads}}}\n"));
                }
                text.push_str(&format!(
                    "fragment F{} on Query {{ me {{ agent {{ id }} }} }}\n",
                    length - 1
                ));
                // As the server's limits count them (README, "SELECTIONS").
                let (mut selections, mut roots) = (3u64, 1u64);
                for _ in 0..length - 1 {
                    selections = (fanout as u64).saturating_mul(selections.saturating_add(1));
                    roots = (fanout as u64).saturating_mul(roots);
                }
                let selections = selections.saturating_add(1);
                let expect = if selections > MAX_SELECTIONS {
                    Expect::Limit(vec!["SELECTIONS"])
                } else if roots > MAX_ROOT_FIELDS as u64 {
                    Expect::Limit(vec!["ROOT_FIELDS"])
                } else {
                    Expect::Any
                };
                Doc::plain("fragment fan-out", text, expect)
            }
            3 => {
                let spreads = "...A ".repeat(fanout.max(2) - 1);
                let text = format!(
                    "query {{ ...A }} fragment A on Query {{ {spreads}...A }}"
                );
                Doc::plain("fragment cycle", text, Expect::Refused)
            }
            4 => {
                let mut text = "query { ...C0 }\n".to_owned();
                for i in 0..cycle {
                    text.push_str(&format!(
                        "fragment C{i} on Query {{ ...C{} ...C{} }}\n",
                        (i + 1) % cycle,
                        (i + 1) % cycle
                    ));
                }
                Doc::plain("fragment cycle", text, Expect::Refused)
            }
            5 => {
                let text = match fanout {
                    1 => "query { me { permissions } } fragment A on Query { ...B } fragment B on Query { ...A }",
                    2 => "query { ...A } fragment A on Query { me { ... on Viewer { customer { ...B } } } } fragment B on Customer { guestAgent { id } ...B }",
                    3 => "query { ...A } fragment A on Query { ... on Query { ... @include(if: true) { ...A } } }",
                    _ => "query { __schema { ...S } } fragment S on __Schema { types { name } ...S }",
                };
                Doc::plain("fragment cycle", text.into(), Expect::Refused)
            }
            6 => {
                let text = match fanout {
                    1 => "query { ...Nope }",
                    2 => "query { ...F } fragment F on Customer { id }",
                    3 => "query { me { ...F } } fragment F on Nope { id }",
                    _ => "query { me { ...F } } fragment F on Viewer { permissions } fragment F on Viewer { agent { id } }",
                };
                Doc::plain("fragment misuse", text.into(), Expect::Refused)
            }
            _ => {
                let mut text = "query { ...L0 }\n".to_owned();
                for i in 0..chain - 1 {
                    text.push_str(&format!("fragment L{i} on Query {{ ...L{} }}\n", i + 1));
                }
                text.push_str(&format!(
                    "fragment L{} on Query {{ me {{ permissions }} }}\n",
                    chain - 1
                ));
                let expect = text_limits(&text, Expect::Any);
                Doc::plain("fragment chain", text, expect)
            }
        },
    )
    .boxed()
}
