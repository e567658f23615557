//! Building blocks of the fuzzer: a small deterministic RNG for the
//! procedural builders (seeded by proptest, so a run is reproducible from
//! its seed), hostile text, values that render both as GraphQL literals and
//! as JSON, GraphQL string encodings, and a replica of the server's
//! documented lexical scan, used to predict NESTING and TOKENS refusals.

use proptest::prelude::*;
use serde_json::Value;

/// SplitMix64: tiny, fast and good enough to pick shapes.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True once in `n` times.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn choose<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// An index into `weights`, chosen in proportion to them.
    pub fn weighted(&mut self, weights: &[usize]) -> usize {
        let total: usize = weights.iter().sum();
        let mut n = self.below(total);
        for (i, w) in weights.iter().enumerate() {
            if n < *w {
                return i;
            }
            n -= w;
        }
        weights.len() - 1
    }

    pub fn uuid(&mut self) -> String {
        let n = (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64());
        uuid::Uuid::from_u128(n).to_string()
    }
}

/// Odd text: controls, bidi and zero-width marks, combining sequences,
/// case-folding traps (U+0130 `İ`, the Kelvin sign), GraphQL and JSON
/// syntax, injection classics.
pub const ODD: &[&str] = &[
    "\u{0}",
    "nul\u{0}byte",
    "\u{1}\u{2}\u{1b}[31m",
    "\u{202E}gnp.exe\u{202C}",
    "\u{200F}\u{200E}\u{200B}\u{2060}",
    "e\u{301}\u{301}\u{301}\u{301}",
    "\u{130}",
    "adm\u{130}n",
    "ADM\u{130}N",
    "\u{212A}elvin",
    "\u{FEFF}",
    "\u{FFFD}",
    "\u{FFFF}",
    "\u{10FFFF}",
    "\u{1F600}\u{200D}\u{1F525}",
    "\u{7F}\u{85}\u{2028}\u{2029}",
    "\r\n",
    "\t",
    "\\",
    "\\u",
    "\\ud800",
    "\"",
    "\"\"\"",
    "\\\"\"\"",
    "{[(",
    ")]}",
    "# not a comment",
    "$v",
    "@include(if: false)",
    "...",
    "' OR '1'='1",
    "'; DROP TABLE customers; --",
    "%00%ff%",
    "%s%n%x",
    "${jndi:ldap://x/a}",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "\u{FB00}\u{DF}\u{1C5}",
    "0",
    "-1",
    "null",
    "true",
    " ",
];

/// Hostile strings, each shrinking towards the empty string.
pub fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::collection::vec(prop::sample::select(ODD), 1..4).prop_map(|v| v.concat()),
        2 => "\\PC{0,24}",
        2 => "[ -~]{0,32}",
        1 => "(?s:.{0,16})",
        1 => (prop::sample::select(ODD), 100usize..3000).prop_map(|(s, n)| s.repeat(n)),
        1 => Just(String::new()),
    ]
}

/// A few hostile strings for one procedural builder to pick from.
pub fn hostile_pool() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(hostile(), 3..5)
}

/// How a string literal is written in a document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrStyle {
    /// Escapes only what must be escaped; the rest verbatim.
    Plain,
    /// Every non-ASCII character as `\uXXXX` (surrogate pairs above the BMP).
    EscapeAll,
    /// Every non-ASCII character as a braced `\u{…}` escape.
    Braced,
    /// A block string, `"""` escaped as `\"""`.
    Block,
    /// Plain, with a lone surrogate escape thrown in.
    LoneSurrogate,
}

pub const STYLES: [StrStyle; 5] = [
    StrStyle::Plain,
    StrStyle::EscapeAll,
    StrStyle::Braced,
    StrStyle::Block,
    StrStyle::LoneSurrogate,
];

/// `s` as a GraphQL string literal.
pub fn gql_string(s: &str, style: StrStyle) -> String {
    if style == StrStyle::Block {
        return format!("\"\"\"{}\"\"\"", s.replace("\"\"\"", "\\\"\"\""));
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    if style == StrStyle::LoneSurrogate {
        out.push_str("\\ud800\\udfff\\uDBFF");
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7F}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if !c.is_ascii() && style == StrStyle::EscapeAll => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04X}"));
                }
            }
            c if !c.is_ascii() && style == StrStyle::Braced => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A value, written either as a GraphQL literal or as JSON (variables,
/// REST bodies). `Mark` is a placeholder the world fills in at run time
/// (an id, a password, a fresh username).
#[derive(Clone, Debug)]
pub enum V {
    Null,
    Int(i64),
    /// Number text as written, for out-of-range and malformed numbers.
    Num(&'static str),
    Float(f64),
    Str(String, StrStyle),
    Mark(&'static str),
    Enum(&'static str),
    Bool(bool),
    List(Vec<V>),
    Obj(Vec<(String, V)>),
}

impl V {
    pub fn str(s: impl Into<String>) -> Self {
        Self::Str(s.into(), StrStyle::Plain)
    }

    pub fn gql(&self) -> String {
        match self {
            Self::Null => "null".into(),
            Self::Int(n) => n.to_string(),
            Self::Num(text) => (*text).into(),
            Self::Float(f) => format!("{f:?}"),
            Self::Str(s, style) => gql_string(s, *style),
            Self::Mark(name) => format!("\"{}\"", mark(name)),
            Self::Enum(name) => (*name).into(),
            Self::Bool(b) => b.to_string(),
            Self::List(items) => format!(
                "[{}]",
                items.iter().map(V::gql).collect::<Vec<_>>().join(", ")
            ),
            Self::Obj(fields) => format!(
                "{{{}}}",
                fields
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", v.gql()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    pub fn json(&self) -> Value {
        match self {
            Self::Null => Value::Null,
            Self::Int(n) => (*n).into(),
            Self::Num(text) => {
                serde_json::from_str(text).unwrap_or_else(|_| Value::from(text.to_string()))
            }
            Self::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Self::Str(s, _) => s.clone().into(),
            Self::Mark(name) => mark(name).into(),
            Self::Enum(name) => (*name).into(),
            Self::Bool(b) => (*b).into(),
            Self::List(items) => items.iter().map(V::json).collect(),
            Self::Obj(fields) => fields
                .iter()
                .map(|(k, v)| (k.clone(), v.json()))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }
}

/// The placeholder text for `name`; see `World::fill`.
pub fn mark(name: &str) -> String {
    format!("\u{27EA}{name}\u{27EB}")
}

/// What the server's lexical scan (src/graphql/scan.rs, README "NESTING"
/// and "TOKENS") counts, written from the documented rules: brackets
/// `{[(` nest outside strings, block strings and comments; tokens are
/// names, numbers, strings, punctuators and `...`. Used only on documents
/// whose lexing is unambiguous.
pub fn scan(text: &str) -> (usize, usize) {
    let bytes = text.as_bytes();
    let (mut nesting, mut tokens, mut open, mut i) = (0usize, 0usize, 0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => i += 1,
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                tokens += 1;
                i += 3;
                loop {
                    if i >= bytes.len() {
                        break;
                    }
                    if bytes[i..].starts_with(b"\\\"\"\"") {
                        i += 4;
                    } else if bytes[i..].starts_with(b"\"\"\"") {
                        i += 3;
                        break;
                    } else {
                        i += 1;
                    }
                }
            }
            b'"' => {
                tokens += 1;
                i += 1;
                while i < bytes.len() {
                    match bytes[i] {
                        b'\\' => i += 2,
                        b'"' => {
                            i += 1;
                            break;
                        }
                        b'\n' | b'\r' => break,
                        _ => i += 1,
                    }
                }
            }
            b'{' | b'[' | b'(' => {
                tokens += 1;
                open += 1;
                nesting = nesting.max(open);
                i += 1;
            }
            b'}' | b']' | b')' => {
                tokens += 1;
                open = open.saturating_sub(1);
                i += 1;
            }
            b'.' if bytes[i..].starts_with(b"...") => {
                tokens += 1;
                i += 3;
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                tokens += 1;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
            }
            b if b.is_ascii_digit() || b == b'-' => {
                tokens += 1;
                i += 1;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || b"_.+-".contains(&bytes[i]))
                {
                    i += 1;
                }
            }
            b if b.is_ascii() => {
                tokens += 1;
                i += 1;
            }
            b => {
                tokens += 1;
                i += match b {
                    0xF0..=0xFF => 4,
                    0xE0..=0xEF => 3,
                    0xC0..=0xDF => 2,
                    _ => 1,
                };
            }
        }
    }
    (nesting, tokens)
}

/// `text`, cut in the middle when long.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let head: String = text.chars().take(max / 2).collect();
    let tail: String = text
        .chars()
        .rev()
        .take(max / 2)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!(
        "{head}…[{} chars]…{tail}",
        text.chars().count() - head.chars().count() - tail.chars().count()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scan_replica_skips_strings_and_comments() {
        assert_eq!(scan("{ a(b: [[1]]) }"), (4, 12));
        assert_eq!(scan("# [[[\n{ a(b: \"[[[\\\"[[\") }"), (2, 8));
        assert_eq!(scan("{ a(b: \"\"\"[[\\\"\"\"[[\"\"\") }"), (2, 8));
        assert_eq!(scan("{ ...F }"), (1, 4));
    }

    #[test]
    fn string_styles_escape_what_they_must() {
        assert_eq!(gql_string("a\"b\\", StrStyle::Plain), r#""a\"b\\""#);
        assert_eq!(
            gql_string("\u{1F600}", StrStyle::EscapeAll),
            r#""\uD83D\uDE00""#
        );
        assert_eq!(gql_string("\u{130}", StrStyle::Braced), r#""\u{130}""#);
        assert_eq!(gql_string("a\"\"\"b", StrStyle::Block), r#""""a\"""b""""#);
    }
}
