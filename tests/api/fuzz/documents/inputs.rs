//! Values for input positions: mostly valid for their meaning, often
//! hostile, sometimes of the wrong type. Shared by the GraphQL operations
//! and the REST bodies, so that both APIs meet the same inputs.

use super::super::values::{Rng, StrStyle, V};
use super::schema::{Ids, In, InputObj};

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
            return self.rng.pick(super::super::values::ODD).to_string();
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
    pub(super) fn input_fields(&mut self, obj: &'static InputObj) -> Vec<(&'static str, In)> {
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
