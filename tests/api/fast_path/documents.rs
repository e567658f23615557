//! Generated requests over everything the fast path serves, and past its
//! edges: fields of every type it knows, aliases (colliding ones too),
//! named and inline fragments, `@skip`/`@include` with literals and with
//! variables (given, missing, not booleans), every argument as a literal
//! and as a variable (valid, out of range, of the wrong type, missing,
//! defaulted), operation names that match and that do not, several
//! operations, and every kind of caller.

use serde_json::{Map, Value, json};

use crate::fuzz::values::Rng;

/// The data and credentials the requests are made with.
pub struct World {
    pub tokens: Vec<Option<String>>,
    /// Weights of `tokens`: mostly the super admin, who may list.
    pub token_weights: Vec<usize>,
    pub customer_ids: Vec<String>,
    pub cursors: Vec<String>,
}

#[derive(Debug)]
pub struct Case {
    pub query: String,
    pub variables: Value,
    pub operation_name: Option<String>,
    pub token: Option<String>,
}

impl Case {
    pub fn body(&self) -> Value {
        let mut body = json!({ "query": self.query, "variables": self.variables });
        if let Some(name) = &self.operation_name {
            body["operationName"] = json!(name);
        }
        body
    }
}

const CUSTOMER_FIELDS: &[&str] = &[
    "id",
    "username",
    "name",
    "detail",
    "webhookMethod",
    "webhookUri",
    "permissionIds",
    "tmCreate",
    "tmUpdate",
    "tmDelete",
    "tmFreeze",
    "status",
    "lineSecret",
    "lineToken",
    "webhookSecret",
    "__typename",
];
const AGENT_FIELDS: &[&str] = &[
    "id",
    "customerId",
    "username",
    "name",
    "detail",
    "permission",
    "permissions",
    "tmCreate",
    "tmUpdate",
    "tmDelete",
    "__typename",
];
const PAGE_INFO_FIELDS: &[&str] = &[
    "hasPreviousPage",
    "hasNextPage",
    "startCursor",
    "endCursor",
    "__typename",
];
/// Aliases that collide with each other and with field names, for merging.
const ALIASES: &[&str] = &["a", "id", "name"];

/// One document under construction.
struct Builder<'a> {
    rng: &'a mut Rng,
    world: &'a World,
    declarations: Vec<String>,
    variables: Map<String, Value>,
    fragments: Vec<String>,
    aliases: usize,
    /// Root fields chosen so far, by name.
    roots: Vec<String>,
}

pub fn case(rng: &mut Rng, world: &World) -> Case {
    let token = world.tokens[rng.weighted(&world.token_weights)].clone();
    let mut b = Builder {
        rng,
        world,
        declarations: Vec::new(),
        variables: Map::new(),
        fragments: Vec::new(),
        aliases: 0,
        roots: Vec::new(),
    };
    let roots = b.rng.weighted(&[0, 6, 3, 1]);
    let selection: Vec<String> = (0..roots).map(|_| b.root_field()).collect();
    let selection = selection.join(" ");
    let named = !b.declarations.is_empty() || b.rng.one_in(3);
    let operation = if named {
        format!("query Q({}) {{ {selection} }}", b.declarations.join(", ")).replace("Q() ", "Q ")
    } else {
        format!("{{ {selection} }}")
    };
    let mut operations = vec![operation];
    if named && b.rng.one_in(8) {
        operations.push("query Other { __typename }".to_owned());
    }
    let two_operations = operations.len() > 1;
    let operation_name = match b.rng.below(20) {
        0 => Some("Other".to_owned()),
        1 if !named => Some("Q".to_owned()),
        2..=4 if named && !two_operations => None,
        _ if named => Some("Q".to_owned()),
        _ => None,
    };
    let query = [operations, std::mem::take(&mut b.fragments)]
        .concat()
        .join("\n");
    Case {
        query,
        variables: Value::Object(b.variables),
        operation_name,
        token,
    }
}

impl Builder<'_> {
    /// Mostly the field's own name, sometimes a fresh alias, now and then
    /// one that may collide (merged, or refused as a conflict).
    fn alias(&mut self, name: &str) -> String {
        match self.rng.below(24) {
            0 => format!("{}: {name}", self.rng.choose(ALIASES)),
            1..=6 => self.fresh_alias(name),
            _ => name.to_owned(),
        }
    }

    fn fresh_alias(&mut self, name: &str) -> String {
        self.aliases += 1;
        format!("k{}: {name}", self.aliases)
    }

    /// A variable of `ty`, declared (sometimes with a default), and given
    /// one of `values` — or left out, or given a value of another type.
    fn variable(&mut self, ty: &str, values: &[Value], default: Option<&str>) -> String {
        let name = format!("v{}", self.declarations.len());
        match default {
            Some(default) if self.rng.one_in(3) => {
                self.declarations.push(format!("${name}: {ty} = {default}"));
            }
            _ => self.declarations.push(format!("${name}: {ty}")),
        }
        match self.rng.below(24) {
            0 => {}
            1 => {
                self.variables.insert(name.clone(), json!({"not": "this"}));
            }
            2 => {
                self.variables.insert(name.clone(), json!("7"));
            }
            _ => {
                let value = self.rng.pick(values).clone();
                self.variables.insert(name.clone(), value);
            }
        }
        format!("${name}")
    }

    /// `@skip`/`@include`, now and then; with a variable only where
    /// async-graphql counts the variable as used (not on `__typename`).
    fn directives(&mut self, variables: bool) -> String {
        match self.rng.below(if variables { 10 } else { 7 }) {
            0 => format!(" @skip(if: {})", self.rng.choose(&["true", "false"])),
            1 => format!(" @include(if: {})", self.rng.choose(&["true", "false"])),
            2 => {
                let values = [json!(true), json!(false)];
                let variable = self.variable("Boolean!", &values, Some("false"));
                let directive = self.rng.choose(&["skip", "include"]);
                format!(" @{directive}(if: {variable})")
            }
            _ => String::new(),
        }
    }

    /// `items` as a selection set, some of them inside inline fragments or
    /// named fragments on `on`.
    fn selection(&mut self, on: &str, items: Vec<String>) -> String {
        let mut out = Vec::new();
        for item in items {
            let directives = self.directives(!item.ends_with("__typename"));
            out.push(match self.rng.below(8) {
                0 => format!("... on {on}{directives} {{ {item} }}"),
                1 => format!("...{directives} {{ {item} }}"),
                2 => {
                    let name = format!("F{}", self.fragments.len());
                    self.fragments
                        .push(format!("fragment {name} on {on} {{ {item} }}"));
                    format!("...{name}{directives}")
                }
                _ => {
                    // A field's directives go after its name and arguments,
                    // before its selection set.
                    match item.find(['{', '(']) {
                        Some(at) => format!("{}{directives} {}", &item[..at], &item[at..]),
                        None => format!("{item}{directives}"),
                    }
                }
            });
        }
        format!("{{ {} }}", out.join(" "))
    }

    fn fields(&mut self, from: &[&str], most: usize) -> Vec<String> {
        let count = self.rng.range(1, most);
        (0..count)
            .map(|_| {
                let field = self.rng.choose(from);
                self.alias(field)
            })
            .collect()
    }

    fn customer(&mut self) -> String {
        let mut items = self.fields(CUSTOMER_FIELDS, 8);
        if self.rng.one_in(3) {
            let agent = self.fields(AGENT_FIELDS, 5);
            let agent = self.selection("Agent", agent);
            items.push(format!("{} {agent}", self.alias("guestAgent")));
        }
        self.selection("Customer", items)
    }

    fn connection(&mut self) -> String {
        let mut items = Vec::new();
        for _ in 0..self.rng.range(1, 4) {
            let item = match self.rng.below(6) {
                0 | 1 => {
                    let mut edge = Vec::new();
                    for _ in 0..self.rng.range(1, 3) {
                        edge.push(match self.rng.below(4) {
                            0 => self.alias("cursor"),
                            1 => "__typename".to_owned(),
                            _ => format!("{} {}", self.alias("node"), self.customer()),
                        });
                    }
                    let edge = self.selection("CustomerEdge", edge);
                    format!("{} {edge}", self.alias("edges"))
                }
                2 => format!("{} {}", self.alias("nodes"), self.customer()),
                3 => {
                    let info = self.fields(PAGE_INFO_FIELDS, 4);
                    let info = self.selection("PageInfo", info);
                    format!("{} {info}", self.alias("pageInfo"))
                }
                4 => self.alias("totalCount"),
                _ => "__typename".to_owned(),
            };
            items.push(item);
        }
        self.selection("CustomerConnection", items)
    }

    fn customers_arguments(&mut self) -> String {
        let sizes = [0, 1, 2, 3, 5, 50, 100, 101, -1];
        let size_values: Vec<Value> = sizes
            .iter()
            .map(|n| json!(n))
            .chain([Value::Null])
            .collect();
        let cursors: Vec<Value> = self
            .world
            .cursors
            .iter()
            .map(|c| json!(c))
            .chain([json!("not-a-cursor"), Value::Null])
            .collect();
        let mut arguments = Vec::new();
        for (name, chance, ty) in [
            ("first", 2, "Int"),
            ("last", 7, "Int"),
            ("after", 5, "String"),
            ("before", 9, "String"),
            ("orderBy", 5, "CustomerOrder!"),
            ("filter", 5, "CustomerFilter"),
        ] {
            if !self.rng.one_in(chance) {
                continue;
            }
            let by_variable = self.rng.one_in(3);
            let value = match (name, by_variable) {
                ("first" | "last", false) => self.rng.choose(&sizes).to_string(),
                ("first" | "last", true) => self.variable(ty, &size_values, Some("3")),
                ("after" | "before", false) => format!("{}", self.rng.pick(&cursors)),
                ("after" | "before", true) => self.variable(ty, &cursors, None),
                ("orderBy", false) => self.rng.choose(&["TM_CREATE_ASC", "TM_CREATE_DESC"]).into(),
                ("orderBy", true) => {
                    let orders = [
                        json!("TM_CREATE_ASC"),
                        json!("TM_CREATE_DESC"),
                        json!("NOPE"),
                    ];
                    self.variable(ty, &orders, Some("TM_CREATE_ASC"))
                }
                (_, false) => self
                    .rng
                    .choose(&[
                        "{search: \"fp\"}",
                        "{search: \"\"}",
                        "{status: FROZEN}",
                        "{status: DELETED}",
                        "{search: \"fp-1\", status: ACTIVE}",
                    ])
                    .into(),
                (_, true) => {
                    let filters = [json!({"search": "fp"}), json!({"status": "FROZEN"})];
                    self.variable(ty, &filters, None)
                }
            };
            arguments.push(format!("{name}: {value}"));
        }
        if arguments.is_empty() {
            String::new()
        } else {
            format!("({})", arguments.join(", "))
        }
    }

    /// A root field; a second one of a kind gets an alias of its own, as
    /// two `customers` with different arguments may not share a key.
    fn root_field(&mut self) -> String {
        let kind = self.rng.weighted(&[5, 4, 1]);
        if kind == 2 {
            // async-graphql counts a variable used only in a directive on a
            // root `__typename` as unused: literals only here.
            let directive = match self.rng.below(4) {
                0 => " @skip(if: false)",
                1 => " @include(if: false)",
                _ => "",
            };
            return format!("__typename{directive}");
        }
        let directives = self.directives(true);
        let name = if kind == 0 { "customers" } else { "customer" };
        let key = if self.roots.iter().any(|root| root == name) || self.rng.one_in(5) {
            self.fresh_alias(name)
        } else {
            name.to_owned()
        };
        self.roots.push(name.to_owned());
        match kind {
            0 => {
                let arguments = self.customers_arguments();
                let connection = self.connection();
                format!("{key}{arguments}{directives} {connection}")
            }
            1 => {
                let ids: Vec<Value> = self
                    .world
                    .customer_ids
                    .iter()
                    .map(|id| json!(id))
                    .chain([json!(uuid::Uuid::new_v4().to_string())])
                    .collect();
                let id = if self.rng.one_in(30) {
                    "\"not-a-uuid\"".to_owned()
                } else if self.rng.one_in(2) {
                    self.variable("UUID!", &ids, None)
                } else {
                    self.rng.pick(&ids).to_string()
                };
                let customer = self.customer();
                format!(
                    "{}(id: {id}){directives} {customer}",
                    self.alias("customer")
                )
            }
            _ => format!("__typename{directives}"),
        }
    }
}
