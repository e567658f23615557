//! REST request bodies. The REST adapter reads its bodies field by field
//! (`JsonObject`), so every field of every endpoint is a separate parser
//! to reach: bodies are written as JSON text, not built as values, so that
//! they can repeat a key, carry numbers no JSON library would produce
//! (`1e400`, `-9223372036854775809`), or nest arrays past any recursion
//! limit.

use serde_json::Value;

use super::super::documents::{Ids, In, MAX_BODY_BYTES, Values};
use super::super::requests::{Endpoint, RestBody, Who};
use super::super::values::{ODD, V, mark};
use super::World;

/// Which endpoint's fields a body carries.
#[derive(Clone, Copy)]
pub(super) enum Shape {
    Login,
    Create,
    Endpoint(Endpoint),
}

impl World {
    pub(super) fn rest_body(&mut self, body: &RestBody, shape: Shape, who: Who) -> Vec<u8> {
        let login = matches!(shape, Shape::Login);
        let text = match body {
            RestBody::Raw(text) => text.clone(),
            RestBody::Bytes(bytes) => return bytes.to_vec(),
            RestBody::Fields(seed, pool) => match shape {
                Shape::Endpoint(endpoint) => endpoint_fields(endpoint, *seed, pool),
                Shape::Login | Shape::Create => account_fields(login, *seed, pool),
            },
            RestBody::Huge(delta) => {
                let head = match shape {
                    Shape::Login => {
                        format!("{{\"username\": \"{}\", \"password\": \"", mark("uname"))
                    }
                    Shape::Create => format!(
                        "{{\"username\": \"{}\", \"password\": \"{}\", \"detail\": \"",
                        mark("fresh"),
                        mark("newpw")
                    ),
                    Shape::Endpoint(endpoint) => huge_head(endpoint),
                };
                let head = self.fill(&head, who);
                let tail = "\"}";
                let target = (MAX_BODY_BYTES as i64 + delta).max(0) as usize;
                let need = target.saturating_sub(head.len() + tail.len());
                return format!("{head}{}{tail}", "x".repeat(need)).into_bytes();
            }
        };
        self.fill(&text, who).into_bytes()
    }
}

/// The body of a login or of a new customer.
fn account_fields(login: bool, seed: u64, pool: &[String]) -> String {
    let mut values = Values::new(seed, pool);
    let mut fields: Vec<(String, V)> = Vec::new();
    let mut field = |values: &mut Values<'_>, name: &str, ty: In, required: bool| {
        let present = if required {
            !values.rng.one_in(15)
        } else {
            values.rng.one_in(2)
        };
        if present {
            let value = values.value(ty);
            fields.push((name.to_owned(), value));
        }
    };
    if login {
        field(&mut values, "username", In::LoginName, true);
        field(&mut values, "password", In::Password, true);
    } else {
        field(&mut values, "username", In::Username, true);
        field(&mut values, "password", In::NewPassword, true);
        for name in ["name", "detail", "line_secret", "line_token"] {
            field(&mut values, name, In::Text, false);
        }
        field(&mut values, "webhook_uri", In::Uri, false);
        field(&mut values, "permission_ids", In::IdList, false);
        if values.rng.one_in(2) {
            let method = if values.rng.one_in(4) {
                V::str(values.text())
            } else {
                V::str(
                    *values
                        .rng
                        .pick(&["GET", "POST", "PUT", "DELETE", "", "PATCH", "post"]),
                )
            };
            fields.push(("webhook_method".into(), method));
        }
        if values.rng.one_in(4) {
            let id = values.id(Ids::Customer);
            fields.push(("id".into(), id));
        }
    }
    if values.rng.one_in(10) {
        fields.push(("unknown".into(), V::Int(1)));
    }
    V::Obj(fields).json().to_string()
}

/// An object open on a string field, for `RestBody::Huge` to fill.
fn huge_head(endpoint: Endpoint) -> String {
    match endpoint {
        Endpoint::LineInfo => "{\"line_token\": \"t\", \"line_secret\": \"".to_owned(),
        Endpoint::PermissionIds => {
            format!(
                "{{\"permission_ids\": [\"{}\"], \"detail\": \"",
                mark("cust")
            )
        }
        Endpoint::Password => "{\"password\": \"".to_owned(),
        Endpoint::CreateKey => "{\"name\": \"fuzz\", \"expire\": 86400, \"detail\": \"".to_owned(),
        _ => "{\"name\": \"fuzz\", \"detail\": \"".to_owned(),
    }
}

/// What a field of the newer endpoints holds.
#[derive(Clone, Copy)]
enum Field {
    Text,
    Method,
    Uri,
    IdList,
    Password,
    Customer,
    Expire,
}

/// An endpoint's fields, some repeated, some missing, now and then one it
/// does not take (ids among them: a handler that applied them would
/// answer for another record, which the outcome checks catch).
fn endpoint_fields(endpoint: Endpoint, seed: u64, pool: &[String]) -> String {
    use Field::*;
    let mut values = Values::new(seed, pool);
    let specs: &[(&str, Field, bool)] = match endpoint {
        Endpoint::UpdateCustomer | Endpoint::UpdateOwn => &[
            ("name", Text, false),
            ("detail", Text, false),
            ("webhook_method", Method, false),
            ("webhook_uri", Uri, false),
        ],
        Endpoint::LineInfo => &[("line_secret", Text, true), ("line_token", Text, true)],
        Endpoint::PermissionIds => &[("permission_ids", IdList, true)],
        Endpoint::Password => &[("password", Password, true)],
        Endpoint::CreateKey => &[
            ("customer_id", Customer, false),
            ("name", Text, false),
            ("detail", Text, false),
            ("expire", Expire, false),
        ],
        Endpoint::UpdateKey => &[("name", Text, false), ("detail", Text, false)],
        Endpoint::GetOwn | Endpoint::ListKeys | Endpoint::GetKey | Endpoint::DeleteKey => &[],
    };
    let mut fields: Vec<(String, String)> = Vec::new();
    for &(name, kind, required) in specs {
        let present = if required {
            !values.rng.one_in(15)
        } else {
            values.rng.one_in(2)
        };
        if present {
            let value = field_value(&mut values, kind);
            fields.push((name.to_owned(), value));
        }
        // A repeated key: serde_json keeps the last one.
        if values.rng.one_in(12) {
            let value = field_value(&mut values, kind);
            fields.push((name.to_owned(), value));
        }
    }
    if values.rng.one_in(6) {
        let (name, value) = *values.rng.pick(&[
            ("id", "\"\u{27EA}other\u{27EB}\""),
            ("customer_id", "\"\u{27EA}other\u{27EB}\""),
            ("username", "\"\u{27EA}fresh\u{27EB}\""),
            ("permission_ids", "[\"\u{27EA}other\u{27EB}\"]"),
            ("tm_delete", "\"2022-01-01 00:00:00.000000\""),
            ("token", "\"vb_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\""),
            ("unknown", "1"),
            ("", "null"),
            ("__proto__", "{\"admin\": true}"),
        ]);
        fields.push((name.to_owned(), value.to_owned()));
    }
    let sep = *values.rng.pick(&[" ", "", "\n\t ", " "]);
    let members: Vec<String> = fields
        .iter()
        .map(|(name, value)| format!("{}:{sep}{value}", Value::from(name.as_str())))
        .collect();
    format!("{{{}}}", members.join(&format!(",{sep}")))
}

const EXPIRES: &[&str] = &[
    "86400",
    "2592000",
    "31536000",
    "157680000",
    "86399",
    "157680001",
    "0",
    "-1",
    "-86400",
    "2147483647",
    "2147483648",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "-9223372036854775809",
    "86400.0",
    "86400.5",
    "8.64e4",
    "\"86400\"",
    "-0",
    "1e400",
    "null",
];

/// One field's value as JSON text: mostly of its meaning, valid or
/// hostile, often of the wrong type.
fn field_value(values: &mut Values<'_>, kind: Field) -> String {
    let json = |v: V| v.json().to_string();
    if values.rng.one_in(8) {
        return wrong_type(values);
    }
    match kind {
        Field::Text => match values.rng.below(25) {
            0 => {
                let unit = values.text();
                let unit = if unit.is_empty() {
                    "x".to_owned()
                } else {
                    unit
                };
                let count = 40_000 / unit.len() + 1;
                json(V::str(unit.repeat(count)))
            }
            1 => json(V::str("\u{0}".repeat(300))),
            _ => json(values.value(In::Text)),
        },
        Field::Method => match values.rng.below(12) {
            0..=5 => json(V::str(
                *values.rng.pick(&["GET", "POST", "PUT", "DELETE", ""]),
            )),
            6 => json(V::str(*values.rng.pick(&[
                "get",
                "PATCH",
                " POST",
                "POST\u{0}",
                "P\u{130}ST",
            ]))),
            7 | 8 => json(V::str(values.text())),
            _ => "null".to_owned(),
        },
        Field::Uri => json(values.value(In::Uri)),
        Field::IdList => match values.rng.below(12) {
            0 => {
                let ids: Vec<V> = (0..64).map(|_| V::str(values.rng.uuid())).collect();
                json(V::List(ids))
            }
            1 => json(V::List(vec![V::Mark("cust"); 100])),
            2 => {
                let id = values.rng.uuid();
                json(V::List(vec![V::str(id), V::str("not-a-uuid")]))
            }
            3 => json(V::List(vec![
                V::str(format!("{{{}}}", mark("cust"))),
                V::str(format!("urn:uuid:{}", mark("other"))),
                V::str(values.rng.uuid().to_uppercase()),
                V::str(values.rng.uuid().replace('-', "")),
            ])),
            4 => json(V::List(vec![V::Null])),
            _ => json(values.value(In::IdList)),
        },
        Field::Password => match values.rng.below(10) {
            0..=3 => json(V::Mark("freshpw")),
            4 | 5 => json(V::Mark("newpw")),
            _ => json(values.value(In::NewPassword)),
        },
        Field::Customer => json(values.id(Ids::Customer)),
        Field::Expire => (*values.rng.pick(EXPIRES)).to_owned(),
    }
}

/// JSON of a type no field takes, or that no JSON library would write.
fn wrong_type(values: &mut Values<'_>) -> String {
    match values.rng.below(16) {
        0 => "7".into(),
        1 => "-1".into(),
        2 => "1.5".into(),
        3 => "1e400".into(),
        4 => "true".into(),
        5 => "[]".into(),
        6 => "[1, null]".into(),
        7 => "{}".into(),
        8 => "{\"x\": 1}".into(),
        9 => "\"\"".into(),
        10 => "-9223372036854775809".into(),
        11 => "18446744073709551616".into(),
        12 => {
            let depth = values.rng.range(1, 200);
            format!("{}\"x\"{}", "[".repeat(depth), "]".repeat(depth))
        }
        13 => {
            let depth = values.rng.range(1, 200);
            format!("{}1{}", "{\"a\": ".repeat(depth), "}".repeat(depth))
        }
        14 => V::str(*values.rng.pick(ODD)).json().to_string(),
        _ => "null".into(),
    }
}
