//! Property test over the request path: arbitrary documents (random text,
//! and documents built from the schema's own field and argument names with
//! hostile values) and arbitrary variables, executed as a super admin. No
//! case may panic, produce an error without a code, or an internal error.
//! `FUZZ_CASES` sets the number of cases (default 1500).

use async_graphql::{Request, Variables};
use customer_api::graphql::{
    ClientAddress, Credential, GraphqlExecutor, RequestAuth, per_request_data,
};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use serde_json::{Value, json};

use crate::harness::TestApp;

const FIELDS: &[&str] = &[
    "customers",
    "customer",
    "me",
    "accessKeys",
    "login",
    "createCustomer",
    "deleteCustomer",
    "createAccessKey",
    "deleteAccessKey",
    "edges",
    "nodes",
    "node",
    "cursor",
    "pageInfo",
    "hasNextPage",
    "hasPreviousPage",
    "startCursor",
    "endCursor",
    "totalCount",
    "id",
    "username",
    "name",
    "detail",
    "guestAgent",
    "permission",
    "permissions",
    "tmCreate",
    "tmDelete",
    "agent",
    "token",
    "accessKey",
    "webhookMethod",
    "permissionIds",
    "__typename",
    "__schema",
    "types",
    "__type",
    "bogus",
    "",
];
const ARGUMENTS: &[&str] = &[
    "first",
    "last",
    "after",
    "before",
    "id",
    "input",
    "customerId",
    "name",
    "x",
];

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        Just("2147483648".to_owned()),
        Just("-1".to_owned()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        ".{0,40}".prop_map(|s| format!("{:?}", s)),
        Just("\"00000000-0000-0000-0000-000000000000\"".to_owned()),
        Just("\"YzE6MTc5NTc1NzU5NTYxMDkzNjowMWEy\"".to_owned()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("POST".to_owned()),
        Just("$v".to_owned()),
        prop::sample::select(FIELDS).prop_map(|f| format!("\"{f}\"")),
    ]
}

fn value() -> impl Strategy<Value = String> {
    scalar().prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec(
                (
                    prop::sample::select(
                        &[
                            "username",
                            "password",
                            "name",
                            "id",
                            "expireSeconds",
                            "webhookUri",
                            "permissionIds",
                            "customerId"
                        ][..]
                    ),
                    inner
                ),
                0..5
            )
            .prop_map(|kv| format!(
                "{{{}}}",
                kv.iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        ]
    })
}

fn selection() -> impl Strategy<Value = String> {
    let field = (
        prop::option::of("[a-z]{1,3}"),
        prop::sample::select(FIELDS),
        prop::collection::vec((prop::sample::select(ARGUMENTS), value()), 0..3),
    )
        .prop_map(|(alias, name, args)| {
            let alias = alias.map(|a| format!("{a}: ")).unwrap_or_default();
            let args = if args.is_empty() {
                String::new()
            } else {
                format!(
                    "({})",
                    args.iter()
                        .map(|(k, v)| format!("{k}: {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            format!("{alias}{name}{args}")
        });
    field.prop_recursive(5, 40, 5, |inner| {
        (inner.clone(), prop::collection::vec(inner, 1..5))
            .prop_map(|(head, children)| format!("{head} {{ {} }}", children.join(" ")))
    })
}

fn document() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (prop::sample::select(&["", "query ", "mutation ", "query Q($v: Int) ", "subscription "][..]), prop::collection::vec(selection(), 1..4))
            .prop_map(|(op, fields)| format!("{op}{{ {} }}", fields.join(" "))),
        1 => ".{0,200}",
        1 => "[{}()$:!@ a-zA-Z0-9_\"\\.\n]{0,120}",
    ]
}

/// Operations the schema really has, with every argument a variable, so
/// that most cases pass validation and reach the resolvers.
const OPERATIONS: &[&str] = &[
    "query($a: Int, $b: Int, $s: String, $t: String) { customers(first: $a, last: $b, after: $s, before: $t) { totalCount edges { cursor node { id username webhookMethod permissionIds guestAgent { id username permissions } } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }",
    "query($u: UUID!) { customer(id: $u) { id username tmDelete guestAgent { username tmDelete } } }",
    "{ me { agent { username permissions } customer { id } permissions } }",
    "query($a: Int, $b: Int, $s: String, $u: UUID) { accessKeys(first: $a, last: $b, after: $s, customerId: $u) { totalCount nodes { id tokenPrefix tmExpire } pageInfo { endCursor } } }",
    "mutation($s: String!, $t: String!, $n: String, $w: String, $m: WebhookMethod, $l: [UUID!]) { createCustomer(input: { username: $s, password: $t, name: $n, webhookUri: $w, webhookMethod: $m, permissionIds: $l }) { customer { id username guestAgent { id } } } }",
    "mutation($u: UUID!) { deleteCustomer(input: { id: $u }) { customer { id tmDelete } } }",
    "mutation($n: String, $i: Int, $u: UUID) { createAccessKey(input: { name: $n, expireSeconds: $i, customerId: $u }) { accessKey { id } } }",
    "mutation($u: UUID!) { deleteAccessKey(input: { id: $u }) { accessKey { id } } }",
    "mutation($s: String!, $t: String!) { login(input: { username: $s, password: $t }) { expiresAt } }",
];

fn json_int() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-5i64..120).prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
        Just(Value::from(i64::MAX)),
        Just(Value::from(86_400 * 365 * 10)),
        Just(Value::from(1.5)),
        Just(Value::Null),
    ]
}

fn json_string() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[a-zA-Z0-9._@+-]{0,70}".prop_map(Value::from),
        ".{0,80}".prop_map(Value::from),
        "\\PC{0,20}".prop_map(Value::from),
        Just(Value::from("nul\u{0}byte")),
        Just(Value::from("x".repeat(5000))),
        Just(Value::from("https://example.com/hook")),
        Just(Value::from(
            "YzE6MTc5NTc1NzU5NTYxMDkzNjowMWEyMWI3ZS01YmRiLTc3YzgtYjBkMS01Nzc1NzdhZmE3NTI"
        )),
        "[A-Za-z0-9_-]{0,60}".prop_map(Value::from),
        Just(Value::Null),
        json_int(),
    ]
}

fn json_uuid() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u128>().prop_map(|n| Value::from(uuid::Uuid::from_u128(n).to_string())),
        Just(Value::from("00000000-0000-0000-0000-000000000000")),
        ".{0,40}".prop_map(Value::from),
        Just(Value::Null),
    ]
}

fn variables() -> impl Strategy<Value = Value> {
    (
        json_int(),
        json_int(),
        json_string(),
        json_string(),
        json_string(),
        json_string(),
        json_uuid(),
        json_int(),
        prop::sample::select(&["GET", "POST", "PUT", "DELETE", "PATCH", ""][..]),
        prop::collection::vec(json_uuid(), 0..70),
    )
        .prop_map(|(a, b, s, t, n, w, u, i, m, l)| {
            json!({ "a": a, "b": b, "s": s, "t": t, "n": n, "w": w, "u": u, "i": i, "m": m, "l": l })
        })
}

fn request() -> impl Strategy<Value = (String, Value)> {
    prop_oneof![
        4 => (prop::sample::select(OPERATIONS).prop_map(str::to_owned), variables()),
        1 => (document(), variables()),
    ]
}

#[test]
fn arbitrary_requests_never_panic_or_fail_internally() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (app, admin) = runtime.block_on(async {
        let app = TestApp::spawn().await;
        let admin = app.admin_token().await;
        (app, admin)
    });
    let executor = GraphqlExecutor::new(app.state.clone());
    let cases: u32 = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1500);
    let mut runner = TestRunner::new(RunnerConfig {
        cases,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let started = std::time::Instant::now();
    let executed = std::sync::atomic::AtomicU32::new(0);
    let result = runner.run(&request(), |(query, variables)| {
        let request = per_request_data(
            Request::new(query.clone()).variables(Variables::from_json(variables)),
            &app.state,
            RequestAuth::new(Credential::Bearer(admin.clone())),
            ClientAddress(None),
        );
        let response = runtime.block_on(executor.execute(request, false));
        let reached_resolvers = response.data != async_graphql::Value::Null
            || response.errors.iter().any(|e| !e.path.is_empty());
        if reached_resolvers {
            executed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        for error in &response.errors {
            let code = error
                .extensions
                .as_ref()
                .and_then(|e| e.get("code"))
                .map(|c| c.to_string());
            prop_assert!(
                code.is_some(),
                "an error without a code for {query:?}: {error:?}"
            );
            prop_assert!(
                code.as_deref() != Some("\"INTERNAL_SERVER_ERROR\""),
                "an internal error for {query:?}: {error:?}"
            );
        }
        Ok::<(), TestCaseError>(())
    });
    println!(
        "fuzz: {cases} cases in {:?}; {} passed validation and ran resolvers",
        started.elapsed(),
        executed.into_inner()
    );
    if let Err(failure) = result {
        panic!("{failure}");
    }
    drop(app);
}
