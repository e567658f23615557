//! GraphQL documents. Most are operations built from the schema's own root
//! fields, arguments and output types, decorated the way real and hostile
//! clients write them: named fragments (spread more than once), inline
//! fragments with and without type conditions, `@include`/`@skip` with
//! literals and variables, unknown directives, aliases, comments, block
//! strings, several named operations, variables with defaults and list
//! types. The other families aim at the limits: deep selections (braces,
//! inline fragments, fragment chains), deep literals (up to 120,000 levels),
//! fragment cycles and exponential fan-out, documents at MAX_TOKENS and at
//! MAX_BODY_BYTES, aliases and root fields around their caps, introspection
//! depth, brackets hidden in strings and comments, and plain garbage.
//! Where the outcome is determined by the documented limits, the document
//! carries an `Expect`.

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::values::{Rng, STYLES, StrStyle, V, clip, gql_string, hostile_pool, mark, scan};

// The server's defaults (README, "Configuration"); the fuzzed server runs with them.
pub const MAX_BODY_BYTES: usize = 262_144;
const MAX_QUERY_DEPTH: usize = 12;
const MAX_NESTING: usize = 32;
const MAX_TOKENS: usize = 10_000;
const MAX_SELECTIONS: u64 = 2_000;
const MAX_ALIASES: usize = 30;
const MAX_ROOT_FIELDS: usize = 20;
const MAX_INTROSPECTION_DEPTH: usize = 20;
const MAX_INTROSPECTION_LISTS: usize = 3;

/// What the documented limits say must happen to a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    Any,
    /// Refused before execution by one of these limits.
    Limit(Vec<&'static str>),
    /// Not refused by any of these limits.
    NotLimit(Vec<&'static str>),
    /// Refused before execution (a fragment cycle, an unknown fragment).
    Refused,
    /// Refused before execution with this code.
    RefusedWith(&'static str),
}

#[derive(Clone)]
pub struct Doc {
    pub family: &'static str,
    pub text: String,
    pub variables: Option<Value>,
    pub operation_name: Option<String>,
    /// Any operation in it is a mutation (GET must then never execute it).
    pub mutation: bool,
    pub expect: Expect,
    /// Fill `⟪pad⟫` so that a POSTed body is MAX_BODY_BYTES plus this.
    pub pad: Option<i64>,
}

impl std::fmt::Debug for Doc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Doc")
            .field("family", &self.family)
            .field("text", &clip(&self.text, 3000))
            .field(
                "variables",
                &self.variables.as_ref().map(|v| clip(&v.to_string(), 3000)),
            )
            .field("operation_name", &self.operation_name)
            .field("mutation", &self.mutation)
            .field("expect", &self.expect)
            .field("pad", &self.pad)
            .finish()
    }
}

impl Doc {
    fn plain(family: &'static str, text: String, expect: Expect) -> Self {
        Self {
            family,
            text,
            variables: None,
            operation_name: None,
            mutation: false,
            expect,
            pad: None,
        }
    }
}

/// The expectation for a document that should be refused by its text alone,
/// as the replica of the server's scan sees it, else `otherwise`.
fn text_limits(text: &str, otherwise: Expect) -> Expect {
    let (nesting, tokens) = scan(text);
    let mut hit = Vec::new();
    if nesting > MAX_NESTING {
        hit.push("NESTING");
    }
    if tokens > MAX_TOKENS {
        hit.push("TOKENS");
    }
    if hit.is_empty() {
        otherwise
    } else {
        Expect::Limit(hit)
    }
}

// ---------------------------------------------------------------------------
// The schema, as far as the fuzzer needs it.

pub struct Obj {
    name: &'static str,
    fields: &'static [(&'static str, Option<&'static Obj>)],
}

static AGENT: Obj = Obj {
    name: "Agent",
    fields: &[
        ("id", None),
        ("customerId", None),
        ("username", None),
        ("name", None),
        ("detail", None),
        ("permission", None),
        ("permissions", None),
        ("tmCreate", None),
        ("tmUpdate", None),
        ("tmDelete", None),
    ],
};
static CUSTOMER: Obj = Obj {
    name: "Customer",
    fields: &[
        ("id", None),
        ("username", None),
        ("name", None),
        ("detail", None),
        ("webhookMethod", None),
        ("webhookUri", None),
        ("permissionIds", None),
        ("tmCreate", None),
        ("tmUpdate", None),
        ("tmDelete", None),
        ("lineSecret", None),
        ("lineToken", None),
        ("guestAgent", Some(&AGENT)),
        ("guestAgent", Some(&AGENT)),
    ],
};
static ACCESS_KEY: Obj = Obj {
    name: "AccessKey",
    fields: &[
        ("id", None),
        ("customerId", None),
        ("name", None),
        ("detail", None),
        ("tokenPrefix", None),
        ("tmExpire", None),
        ("tmLastUsed", None),
        ("tmCreate", None),
        ("tmUpdate", None),
        ("tmDelete", None),
    ],
};
static PAGE_INFO: Obj = Obj {
    name: "PageInfo",
    fields: &[
        ("hasPreviousPage", None),
        ("hasNextPage", None),
        ("startCursor", None),
        ("endCursor", None),
    ],
};
static CUSTOMER_EDGE: Obj = Obj {
    name: "CustomerEdge",
    fields: &[("cursor", None), ("node", Some(&CUSTOMER))],
};
static CUSTOMER_CONNECTION: Obj = Obj {
    name: "CustomerConnection",
    fields: &[
        ("edges", Some(&CUSTOMER_EDGE)),
        ("nodes", Some(&CUSTOMER)),
        ("pageInfo", Some(&PAGE_INFO)),
        ("totalCount", None),
    ],
};
static ACCESS_KEY_EDGE: Obj = Obj {
    name: "AccessKeyEdge",
    fields: &[("cursor", None), ("node", Some(&ACCESS_KEY))],
};
static ACCESS_KEY_CONNECTION: Obj = Obj {
    name: "AccessKeyConnection",
    fields: &[
        ("edges", Some(&ACCESS_KEY_EDGE)),
        ("nodes", Some(&ACCESS_KEY)),
        ("pageInfo", Some(&PAGE_INFO)),
        ("totalCount", None),
    ],
};
static VIEWER: Obj = Obj {
    name: "Viewer",
    fields: &[
        ("agent", Some(&AGENT)),
        ("customer", Some(&CUSTOMER)),
        ("permissions", None),
    ],
};
static LOGIN_PAYLOAD: Obj = Obj {
    name: "LoginPayload",
    fields: &[
        ("token", None),
        ("expiresAt", None),
        ("agent", Some(&AGENT)),
    ],
};
static LOGOUT_PAYLOAD: Obj = Obj {
    name: "LogoutPayload",
    fields: &[("revoked", None)],
};
static CHANGE_PASSWORD_PAYLOAD: Obj = Obj {
    name: "ChangePasswordPayload",
    fields: &[("agent", Some(&AGENT))],
};
static SET_AGENT_PASSWORD_PAYLOAD: Obj = Obj {
    name: "SetAgentPasswordPayload",
    fields: &[("agent", Some(&AGENT))],
};
static CREATE_CUSTOMER_PAYLOAD: Obj = Obj {
    name: "CreateCustomerPayload",
    fields: &[("customer", Some(&CUSTOMER))],
};
static DELETE_CUSTOMER_PAYLOAD: Obj = Obj {
    name: "DeleteCustomerPayload",
    fields: &[("customer", Some(&CUSTOMER))],
};
static CREATE_ACCESS_KEY_PAYLOAD: Obj = Obj {
    name: "CreateAccessKeyPayload",
    fields: &[("accessKey", Some(&ACCESS_KEY)), ("token", None)],
};
static DELETE_ACCESS_KEY_PAYLOAD: Obj = Obj {
    name: "DeleteAccessKeyPayload",
    fields: &[("accessKey", Some(&ACCESS_KEY))],
};

/// What an input position holds, by meaning (so that values can be valid).
#[derive(Clone, Copy)]
pub enum In {
    Page,
    Expire,
    Cursor,
    /// A new username.
    Username,
    /// The username to log in with.
    LoginName,
    Password,
    NewPassword,
    Text,
    Uri,
    Id(Ids),
    Method,
    IdList,
    Input(&'static InputObj),
}

#[derive(Clone, Copy)]
pub enum Ids {
    Customer,
    Agent,
    Key,
}

pub struct Arg {
    name: &'static str,
    ty: In,
    required: bool,
}

const fn arg(name: &'static str, ty: In, required: bool) -> Arg {
    Arg { name, ty, required }
}

pub struct InputObj {
    name: &'static str,
    fields: &'static [Arg],
}

static LOGIN_INPUT: InputObj = InputObj {
    name: "LoginInput",
    fields: &[
        arg("username", In::LoginName, true),
        arg("password", In::Password, true),
    ],
};
static CHANGE_PASSWORD_INPUT: InputObj = InputObj {
    name: "ChangePasswordInput",
    fields: &[
        arg("currentPassword", In::Password, true),
        arg("newPassword", In::NewPassword, true),
    ],
};
static SET_AGENT_PASSWORD_INPUT: InputObj = InputObj {
    name: "SetAgentPasswordInput",
    fields: &[
        arg("agentId", In::Id(Ids::Agent), true),
        arg("password", In::NewPassword, true),
    ],
};
static CREATE_CUSTOMER_INPUT: InputObj = InputObj {
    name: "CreateCustomerInput",
    fields: &[
        arg("username", In::Username, true),
        arg("password", In::NewPassword, true),
        arg("name", In::Text, false),
        arg("detail", In::Text, false),
        arg("webhookMethod", In::Method, false),
        arg("webhookUri", In::Uri, false),
        arg("lineSecret", In::Text, false),
        arg("lineToken", In::Text, false),
        arg("permissionIds", In::IdList, false),
    ],
};
static DELETE_CUSTOMER_INPUT: InputObj = InputObj {
    name: "DeleteCustomerInput",
    fields: &[arg("id", In::Id(Ids::Customer), true)],
};
static CREATE_ACCESS_KEY_INPUT: InputObj = InputObj {
    name: "CreateAccessKeyInput",
    fields: &[
        arg("customerId", In::Id(Ids::Customer), false),
        arg("name", In::Text, false),
        arg("detail", In::Text, false),
        arg("expireSeconds", In::Expire, false),
    ],
};
static DELETE_ACCESS_KEY_INPUT: InputObj = InputObj {
    name: "DeleteAccessKeyInput",
    fields: &[arg("id", In::Id(Ids::Key), true)],
};

struct Root {
    name: &'static str,
    weight: usize,
    args: &'static [Arg],
    out: &'static Obj,
}

static PAGE_ARGS: [Arg; 4] = [
    arg("first", In::Page, false),
    arg("after", In::Cursor, false),
    arg("last", In::Page, false),
    arg("before", In::Cursor, false),
];

static QUERIES: [Root; 4] = [
    Root {
        name: "customers",
        weight: 3,
        args: &PAGE_ARGS,
        out: &CUSTOMER_CONNECTION,
    },
    Root {
        name: "customer",
        weight: 3,
        args: &[arg("id", In::Id(Ids::Customer), true)],
        out: &CUSTOMER,
    },
    Root {
        name: "accessKeys",
        weight: 2,
        args: &[
            arg("customerId", In::Id(Ids::Customer), false),
            arg("first", In::Page, false),
            arg("after", In::Cursor, false),
            arg("last", In::Page, false),
            arg("before", In::Cursor, false),
        ],
        out: &ACCESS_KEY_CONNECTION,
    },
    Root {
        name: "me",
        weight: 3,
        args: &[],
        out: &VIEWER,
    },
];

static MUTATIONS: [Root; 8] = [
    Root {
        name: "login",
        weight: 3,
        args: &[arg("input", In::Input(&LOGIN_INPUT), true)],
        out: &LOGIN_PAYLOAD,
    },
    Root {
        name: "logout",
        weight: 1,
        args: &[],
        out: &LOGOUT_PAYLOAD,
    },
    Root {
        name: "changePassword",
        weight: 2,
        args: &[arg("input", In::Input(&CHANGE_PASSWORD_INPUT), true)],
        out: &CHANGE_PASSWORD_PAYLOAD,
    },
    Root {
        name: "setAgentPassword",
        weight: 2,
        args: &[arg("input", In::Input(&SET_AGENT_PASSWORD_INPUT), true)],
        out: &SET_AGENT_PASSWORD_PAYLOAD,
    },
    Root {
        name: "createCustomer",
        weight: 3,
        args: &[arg("input", In::Input(&CREATE_CUSTOMER_INPUT), true)],
        out: &CREATE_CUSTOMER_PAYLOAD,
    },
    Root {
        name: "deleteCustomer",
        weight: 2,
        args: &[arg("input", In::Input(&DELETE_CUSTOMER_INPUT), true)],
        out: &DELETE_CUSTOMER_PAYLOAD,
    },
    Root {
        name: "createAccessKey",
        weight: 3,
        args: &[arg("input", In::Input(&CREATE_ACCESS_KEY_INPUT), true)],
        out: &CREATE_ACCESS_KEY_PAYLOAD,
    },
    Root {
        name: "deleteAccessKey",
        weight: 2,
        args: &[arg("input", In::Input(&DELETE_ACCESS_KEY_INPUT), true)],
        out: &DELETE_ACCESS_KEY_PAYLOAD,
    },
];

fn type_name(ty: In) -> &'static str {
    match ty {
        In::Page | In::Expire => "Int",
        In::Cursor
        | In::Username
        | In::LoginName
        | In::Password
        | In::NewPassword
        | In::Text
        | In::Uri => "String",
        In::Id(_) => "UUID",
        In::Method => "WebhookMethod",
        In::IdList => "[UUID!]",
        In::Input(obj) => obj.name,
    }
}

// ---------------------------------------------------------------------------
// Values (shared with the REST bodies).

/// Picks values for input positions: mostly valid for their meaning, often
/// hostile, sometimes of the wrong type.
pub struct Values<'a> {
    pub rng: Rng,
    pool: &'a [String],
}

impl<'a> Values<'a> {
    pub fn new(seed: u64, pool: &'a [String]) -> Self {
        Self {
            rng: Rng::new(seed),
            pool,
        }
    }

    pub fn text(&mut self) -> String {
        if self.pool.is_empty() || self.rng.one_in(8) {
            return self.rng.pick(super::values::ODD).to_string();
        }
        self.pool[self.rng.below(self.pool.len())].clone()
    }

    pub fn styled(&mut self, s: String) -> V {
        // The last three are parse errors for async-graphql's parser (it
        // takes neither escaped surrogates nor braced escapes): rarer.
        let style = match self.rng.below(60) {
            0..=49 => StrStyle::Plain,
            50..=56 => StrStyle::Block,
            57 => StrStyle::EscapeAll,
            58 => StrStyle::Braced,
            _ => StrStyle::LoneSurrogate,
        };
        V::Str(s, style)
    }

    fn hostile_text(&mut self) -> V {
        let text = self.text();
        self.styled(text)
    }

    pub fn value(&mut self, ty: In) -> V {
        if self.rng.one_in(60) {
            return self.wrong_type();
        }
        let r = self.rng.below(20);
        match ty {
            In::Page => match self.rng.below(40) {
                0 => V::Num("2147483648"),
                1 => V::Int(0),
                2 => V::Int(-1),
                3 => V::Int(101),
                4 => V::Int(i64::from(i32::MAX)),
                5 => V::Null,
                _ => V::Int(*self.rng.pick(&[1, 2, 3, 5, 10, 20, 50, 100])),
            },
            In::Expire => V::Int(*self.rng.pick(&[
                86_400,
                2_592_000,
                31_536_000,
                157_680_000,
                86_399,
                157_680_001,
                0,
                -86_400,
                2_147_483_647,
            ])),
            In::Cursor => match r {
                0..=2 => V::Null,
                3 | 4 => V::str(""),
                5 => V::str("YzE6MTc5NTc1NzU5NTYxMDkzNjowMWEy"),
                6 => V::str("A".repeat(2000)),
                _ => self.hostile_text(),
            },
            In::LoginName => match r {
                0..=11 => V::Mark("uname"),
                12 | 13 => V::Mark("cuname"),
                14 => V::str("admin"),
                15 | 16 => V::Mark("fresh"),
                17 => V::str(
                    *self
                        .rng
                        .pick(&["ADMIN", "adm\u{130}n", " admin", "\u{FF41}dmin"]),
                ),
                _ => self.hostile_text(),
            },
            In::Username => match r {
                0..=9 => V::Mark("fresh"),
                10 => V::Mark("uname"),
                11 => V::str("admin"),
                12..=14 => V::str(*self.rng.pick(&[
                    "ADMIN",
                    "adm\u{130}n",
                    "ab",
                    " admin",
                    "admin\u{0}",
                    "a\u{301}dmin",
                    "\u{FF41}dmin",
                ])),
                15 => V::str("u".repeat(65)),
                _ => self.hostile_text(),
            },
            In::Password => match r {
                0..=9 => V::Mark("pw"),
                10 | 11 => V::Mark("apw"),
                12 | 13 => V::Mark("cpw"),
                14 | 15 => V::str("wrong-password-1"),
                16 => V::str("p".repeat(300)),
                _ => self.hostile_text(),
            },
            In::NewPassword => match r {
                0..=9 => V::Mark("newpw"),
                10 => V::str("short"),
                11 => V::str("\u{e9}".repeat(257)),
                12 => V::str("\u{0}".repeat(12)),
                _ => self.hostile_text(),
            },
            In::Text => match r {
                0 => V::str("x".repeat(5000)),
                1..=4 => V::str("fuzz"),
                _ => self.hostile_text(),
            },
            In::Uri => match r {
                0..=5 => V::str("https://example.com/hook"),
                6 | 7 => V::str(""),
                8..=12 => V::str(*self.rng.pick(&[
                    "http://example.com",
                    "javascript:alert(1)",
                    "https://user:pw@example.com/",
                    "https://example.com/ a",
                    "HTTPS://EXAMPLE.COM/",
                    "https://example.com/\u{0}",
                    "//example.com",
                    "https://[::1]:99999/",
                    "https://xn--e1afmkfd.xn--p1ai/\u{202E}",
                ])),
                13 => V::str(format!("https://example.com/{}", "a".repeat(1100))),
                _ => self.hostile_text(),
            },
            In::Id(kind) => self.id(kind),
            In::Method => match self.rng.below(40) {
                0 => V::Enum("PATCH"),
                1 => V::str("POST"),
                2 => V::Enum("post"),
                3..=5 => V::Null,
                _ => V::Enum(self.rng.choose(&["GET", "POST", "PUT", "DELETE"])),
            },
            In::IdList => match r {
                0 | 1 => V::List(
                    (0..self.rng.range(65, 70))
                        .map(|_| V::str(self.rng.uuid()))
                        .collect(),
                ),
                2 | 3 => self.id(Ids::Customer),
                4 | 5 => V::List(Vec::new()),
                _ => V::List(
                    (0..self.rng.range(1, 4))
                        .map(|_| self.id(Ids::Customer))
                        .collect(),
                ),
            },
            In::Input(obj) => V::Obj(
                self.input_fields(obj)
                    .into_iter()
                    .map(|(name, ty)| (name.to_owned(), self.value(ty)))
                    .collect(),
            ),
        }
    }

    /// The fields of `obj` to send: required ones (almost always), some
    /// optional ones, and now and then an unknown one.
    fn input_fields(&mut self, obj: &'static InputObj) -> Vec<(&'static str, In)> {
        let mut fields: Vec<(&'static str, In)> = obj
            .fields
            .iter()
            .filter(|f| {
                if f.required {
                    !self.rng.one_in(30)
                } else {
                    self.rng.one_in(2)
                }
            })
            .map(|f| (f.name, f.ty))
            .collect();
        if self.rng.one_in(40) {
            fields.push(("bogus", In::Text));
        }
        fields
    }

    pub fn id(&mut self, kind: Ids) -> V {
        let marks: &[&'static str] = match kind {
            Ids::Customer => &["cust", "cust", "other", "platform"],
            Ids::Agent => &["cadmin", "agent", "agent", "sadmin", "otheragent"],
            Ids::Key => &["key", "key", "deadkey"],
        };
        match self.rng.below(40) {
            0..=29 => V::Mark(self.rng.choose(marks)),
            30..=32 => V::str(self.rng.uuid()),
            33..=35 => V::str("00000000-0000-0000-0000-000000000000"),
            36 | 37 => V::str(*self.rng.pick(&[
                "not-a-uuid",
                "{00000000-0000-0000-0000-000000000000}",
                "urn:uuid:00000000-0000-0000-0000-000000000000",
                "00000000000000000000000000000000",
                "00000000-0000-0000-0000-00000000000G",
                "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
            ])),
            _ => self.hostile_text(),
        }
    }

    fn wrong_type(&mut self) -> V {
        match self.rng.below(9) {
            0 => V::Null,
            1 => V::Int(7),
            2 => V::Float(1.5),
            3 => V::Bool(true),
            4 => self.hostile_text(),
            5 => V::List(vec![V::Int(1), V::Null]),
            6 => V::Obj(vec![("x".into(), V::Int(1))]),
            7 => V::Enum("FOO"),
            _ => V::Num("1e400"),
        }
    }
}

// ---------------------------------------------------------------------------
// Operations from the schema.

struct Builder<'a> {
    values: Values<'a>,
    /// Variable declarations of the operation being built.
    declarations: Vec<String>,
    variables: Map<String, Value>,
    fragments: Vec<String>,
    next_variable: usize,
    next_fragment: usize,
    aliases: usize,
    /// Inside a named fragment: no variables (other operations could spread it).
    in_fragment: bool,
}

impl<'a> Builder<'a> {
    fn new(seed: u64, pool: &'a [String]) -> Self {
        Self {
            values: Values::new(seed, pool),
            declarations: Vec::new(),
            variables: Map::new(),
            fragments: Vec::new(),
            next_variable: 0,
            next_fragment: 0,
            aliases: 0,
            in_fragment: false,
        }
    }

    fn rng(&mut self) -> &mut Rng {
        &mut self.values.rng
    }

    /// Whitespace between tokens: now and then commas, odd line breaks or a
    /// comment full of brackets and quotes.
    fn sep(&mut self) -> String {
        match self.rng().below(30) {
            0 => "\n".into(),
            1 => ",".into(),
            2 => "\t,\r\n ".into(),
            3 => {
                let text = match self.rng().below(3) {
                    0 => "{[( \"\"\" \" \\\" ))]} ...F @skip".to_owned(),
                    1 => self.values.text(),
                    _ => "query { me { permissions } }".to_owned(),
                };
                format!(" # {}\n", text.replace(['\n', '\r'], " "))
            }
            _ => " ".into(),
        }
    }

    /// A new variable of type `ty` holding `value` (or, now and then, only
    /// a default, a wrongly declared type, or no value at all).
    fn variable(&mut self, ty: String, value: V) -> String {
        let name = format!("v{}", self.next_variable);
        self.next_variable += 1;
        let declared = if self.rng().one_in(40) {
            self.rng()
                .pick(&[
                    "Int",
                    "String",
                    "[String]",
                    "Boolean!",
                    "UUID",
                    "[[UUID!]!]",
                ])
                .to_string()
        } else {
            ty
        };
        let default = if self.rng().one_in(6) {
            let default = value.gql();
            Some(default)
        } else {
            None
        };
        let declaration = match &default {
            Some(default) => format!("${name}: {declared} = {default}"),
            None => format!("${name}: {declared}"),
        };
        self.declarations.push(declaration);
        // A value, unless the default stands in for it; now and then none at all.
        if (default.is_none() || self.rng().one_in(2)) && !self.rng().one_in(30) {
            self.variables.insert(name.clone(), value.json());
        }
        format!("${name}")
    }

    /// A value for an input position, as a literal or a variable.
    fn argument(&mut self, ty: In, required: bool) -> String {
        let bang = if required { "!" } else { "" };
        let use_variable = !self.in_fragment && self.rng().one_in(3);
        match ty {
            In::Input(obj) if !use_variable || self.rng().one_in(2) => {
                let fields = self.values.input_fields(obj);
                let mut parts = Vec::new();
                for (name, ty) in fields {
                    let value = self.argument(ty, false);
                    let sep = self.sep();
                    parts.push(format!("{name}:{sep}{value}"));
                }
                format!("{{{}}}", parts.join(", "))
            }
            _ => {
                let value = self.values.value(ty);
                if use_variable {
                    self.variable(format!("{}{bang}", type_name(ty)), value)
                } else {
                    value.gql()
                }
            }
        }
    }

    fn boolean(&mut self) -> String {
        if self.in_fragment || self.rng().one_in(2) {
            return self.rng().pick(&["true", "false", "true"]).to_string();
        }
        let value = match self.rng().below(40) {
            0 => V::str("yes"),
            1 => V::Null,
            n => V::Bool(n % 3 != 0),
        };
        let ty = if self.rng().one_in(6) {
            "Boolean"
        } else {
            "Boolean!"
        };
        self.variable(ty.into(), value)
    }

    /// `@include`/`@skip`, or now and then a directive that is unknown,
    /// misplaced, repeated or missing its argument.
    fn directive(&mut self) -> String {
        let r = self.rng().below(300);
        match r {
            0 => "@foo(bar: [1, {a: \"}\"}])".into(),
            1 => "@deprecated".into(),
            2 => "@include".into(),
            3 => "@skip(if: true) @skip(if: false)".into(),
            _ => {
                let name = if r % 2 == 0 { "include" } else { "skip" };
                let condition = self.boolean();
                format!("@{name}(if: {condition})")
            }
        }
    }

    fn selection_set(&mut self, obj: &'static Obj, depth: usize) -> String {
        let count = self.rng().range(1, 4);
        let mut items = Vec::new();
        for _ in 0..count {
            let item = self.selection(obj, depth);
            items.push(item);
        }
        if self.rng().one_in(10) {
            items.push("__typename".into());
        }
        let (open, close) = (self.sep(), self.sep());
        format!("{{{open}{}{close}}}", items.join(" "))
    }

    fn selection(&mut self, obj: &'static Obj, depth: usize) -> String {
        let (name, child) = *self.rng().pick(obj.fields);
        let mut item = String::new();
        if self.aliases < 25 && self.rng().one_in(8) {
            self.aliases += 1;
            item.push_str(&format!("a{}: ", self.aliases));
        }
        item.push_str(name);
        if self.rng().one_in(9) {
            let directive = self.directive();
            item.push(' ');
            item.push_str(&directive);
        }
        if let Some(child) = child {
            if depth < 4 {
                let set = self.selection_set(child, depth + 1);
                item.push(' ');
                item.push_str(&set);
            } else {
                item.push_str(" { __typename }");
            }
        }
        match self.rng().below(24) {
            0 => format!("... on {} {{ {item} }}", obj.name),
            1 => format!("... {{ {item} }}"),
            2 => {
                let directive = self.directive();
                format!("... {directive} {{ {item} }}")
            }
            3 => format!("... on {} @include(if: true) {{ {item} }}", obj.name),
            4 | 5 if !self.in_fragment => {
                let name = format!("F{}", self.next_fragment);
                self.next_fragment += 1;
                self.in_fragment = true;
                let more = self.selection(obj, depth);
                self.in_fragment = false;
                let condition = if self.rng().one_in(20) {
                    "Agent"
                } else {
                    obj.name
                };
                self.fragments.push(format!(
                    "fragment {name} on {condition} {{ {item} {more} }}"
                ));
                if self.rng().one_in(3) {
                    format!("...{name} ...{name}")
                } else {
                    format!("...{name}")
                }
            }
            _ => item,
        }
    }

    /// A root field; `aliased` when other root fields may share its name.
    fn root_field(&mut self, root: &'static Root, aliased: bool) -> String {
        let mut text = String::new();
        if self.aliases < 25 && (aliased || self.rng().one_in(6)) {
            self.aliases += 1;
            text.push_str(&format!("a{}: ", self.aliases));
        }
        text.push_str(root.name);
        let mut args = Vec::new();
        for a in root.args {
            let present = if a.required {
                !self.rng().one_in(40)
            } else {
                self.rng().one_in(2)
            };
            if present {
                let value = self.argument(a.ty, a.required);
                args.push(format!("{}: {value}", a.name));
            }
        }
        if self.rng().one_in(60) {
            args.push("bogus: 1".into());
        }
        if !args.is_empty() {
            let sep = self.sep();
            text.push_str(&format!("({}{sep})", args.join(", ")));
        }
        if self.rng().one_in(10) {
            let directive = self.directive();
            text.push(' ');
            text.push_str(&directive);
        }
        let set = self.selection_set(root.out, 1);
        text.push(' ');
        text.push_str(&set);
        text
    }

    /// One operation: its text, name and whether it is a mutation.
    fn operation(&mut self, index: usize, count: usize) -> (String, Option<String>, bool) {
        self.declarations.clear();
        let mutation = self.rng().one_in(3);
        let roots: &'static [Root] = if mutation { &MUTATIONS } else { &QUERIES };
        let weights: Vec<usize> = roots.iter().map(|r| r.weight).collect();
        let fields = if mutation {
            1 + usize::from(self.rng().one_in(5))
        } else {
            self.rng().range(1, 2)
        };
        let mut body = Vec::new();
        for i in 0..fields {
            let root = &roots[self.rng().weighted(&weights)];
            let field = self.root_field(root, i > 0);
            body.push(field);
        }
        if !mutation && self.rng().one_in(8) {
            // Root fields through a fragment on the root type.
            let name = format!("F{}", self.next_fragment);
            self.next_fragment += 1;
            self.in_fragment = true;
            let root = &QUERIES[self.rng().weighted(&weights)];
            let field = self.root_field(root, true);
            self.in_fragment = false;
            self.fragments
                .push(format!("fragment {name} on Query {{ {field} }}"));
            body.push(format!("...{name}"));
        }
        let name = if count > 1 || self.rng().one_in(2) {
            Some(match self.rng().below(60) {
                0 => "query".to_owned(),
                1 => format!("_op_{index}"),
                2 if index > 0 => "Op0".to_owned(),
                // Not names: the parser must refuse them.
                3 => format!("Op\u{130}{index}"),
                4 => format!("\u{FF2F}p{index}"),
                _ => format!("Op{index}"),
            })
        } else {
            None
        };
        let kind = if mutation { "mutation" } else { "query" };
        let variables = if self.declarations.is_empty() {
            String::new()
        } else {
            format!("({})", self.declarations.join(", "))
        };
        let directive = if self.rng().one_in(60) {
            format!(" {}", self.directive())
        } else {
            String::new()
        };
        let (open, close) = (self.sep(), self.sep());
        let body = body.join(" ");
        let text = if !mutation
            && name.is_none()
            && variables.is_empty()
            && directive.is_empty()
            && self.rng().one_in(2)
        {
            format!("{{{open}{body}{close}}}")
        } else {
            let name_text = name.as_deref().unwrap_or("");
            format!("{kind} {name_text}{variables}{directive} {{{open}{body}{close}}}")
        };
        (text, name, mutation)
    }

    fn document(mut self) -> Doc {
        let count = match self.rng().below(20) {
            0..=14 => 1,
            15..=18 => 2,
            _ => 3,
        };
        let mut parts = Vec::new();
        let mut names = Vec::new();
        let mut mutation = false;
        for index in 0..count {
            let (text, name, is_mutation) = self.operation(index, count);
            parts.push(text);
            names.push(name);
            mutation |= is_mutation;
        }
        let fragments = std::mem::take(&mut self.fragments);
        for fragment in fragments {
            let at = self.rng().below(parts.len() + 1);
            parts.insert(at, fragment);
        }
        let mut text = String::new();
        for part in parts {
            let sep = self.sep();
            text.push_str(&part);
            text.push_str(&sep);
            text.push('\n');
        }
        match self.rng().below(100) {
            0 => text.insert(0, '\u{FEFF}'),
            1 => text.push_str("# trailing comment with \"\"\" and {[("),
            2 => text.push_str(" }"),
            _ => {}
        }
        let named: Vec<&String> = names.iter().flatten().collect();
        let operation_name = if named.is_empty() {
            self.rng().one_in(10).then(|| "Nope".to_owned())
        } else if count == 1 && self.rng().one_in(2) {
            None
        } else {
            match self.rng().below(24) {
                0 => Some(
                    self.rng()
                        .pick(&["Nope", "Op0\u{0}", "Op\u{130}0", "op0", "\u{202E}0pO"])
                        .to_string(),
                ),
                1 => Some(String::new()),
                2 => None,
                _ => Some(self.rng().pick(&named).to_string()),
            }
        };
        let variables = if self.variables.is_empty() && self.rng().one_in(2) {
            None
        } else {
            Some(Value::Object(std::mem::take(&mut self.variables)))
        };
        Doc {
            family: "operations",
            text,
            variables,
            operation_name,
            mutation,
            expect: Expect::Any,
            pad: None,
        }
    }
}

pub fn operations() -> BoxedStrategy<Doc> {
    (any::<u64>(), hostile_pool())
        .prop_map(|(seed, pool)| Builder::new(seed, &pool).document())
        .boxed()
}

// ---------------------------------------------------------------------------
// Shapes aimed at the limits.

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
fn deep_selection() -> BoxedStrategy<Doc> {
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
fn deep_literal() -> BoxedStrategy<Doc> {
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
fn fragment_graph() -> BoxedStrategy<Doc> {
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

/// Documents of MAX_TOKENS tokens plus `delta`.
fn token_limit() -> BoxedStrategy<Doc> {
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
fn body_near_limit() -> BoxedStrategy<Doc> {
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
fn breadth() -> BoxedStrategy<Doc> {
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
fn introspection() -> BoxedStrategy<Doc> {
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
fn hidden_brackets() -> BoxedStrategy<Doc> {
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

fn garbage() -> BoxedStrategy<Doc> {
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
fn secret_probe() -> BoxedStrategy<Doc> {
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

/// Any document.
pub fn document() -> BoxedStrategy<Doc> {
    prop_oneof![
        70 => operations(),
        6 => deep_selection(),
        7 => deep_literal(),
        8 => fragment_graph(),
        2 => token_limit(),
        2 => body_near_limit(),
        5 => breadth(),
        3 => introspection(),
        3 => hidden_brackets(),
        6 => garbage(),
        2 => secret_probe(),
    ]
    .boxed()
}

/// A document for a batch or a GET: no huge ones.
pub fn small_document() -> BoxedStrategy<Doc> {
    prop_oneof![
        8 => operations(),
        1 => fragment_graph(),
        1 => garbage(),
        1 => breadth(),
    ]
    .boxed()
}
