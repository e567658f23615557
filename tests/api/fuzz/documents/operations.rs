//! Operations built from the schema's own root fields, arguments and
//! output types, decorated as real and hostile clients write them, so
//! that most cases reach the resolvers with inputs worth resolving.

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::super::values::{Rng, V, hostile_pool};
use super::inputs::Values;
use super::schema::{In, MUTATIONS, Obj, QUERIES, Root, type_name};
use super::{Doc, Expect};

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

pub(super) fn operations() -> BoxedStrategy<Doc> {
    (any::<u64>(), hostile_pool())
        .prop_map(|(seed, pool)| Builder::new(seed, &pool).document())
        .boxed()
}
