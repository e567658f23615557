//! A lexical pass over a document's text, run before the parser sees it.
//!
//! async-graphql's parser (pest, then its own tree builder) recurses into
//! nested list and object literals and list types without a bound: about
//! 2,000 levels of `[` overflow a worker thread's stack and abort the whole
//! process. It also allocates a tree node for every token, and validation
//! then reports errors per token (duplicate arguments), so a 256 KiB body
//! could cost hundreds of megabytes. This pass bounds both, in one linear
//! scan that allocates nothing: how deeply brackets nest, and how many
//! tokens there are.
//!
//! It follows GraphQL's lexical grammar just far enough to skip what cannot
//! nest: comments, strings and block strings (with their escapes). For every
//! document the parser accepts, the nesting counted here is at least the
//! depth of any recursion in the parser.

/// What the scan found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TextShape {
    /// The deepest nesting of `{`, `[` and `(`, outside strings and comments.
    pub nesting: usize,
    /// Lexical tokens (names, numbers, strings and punctuators).
    pub tokens: usize,
}

/// Scans `text`. Stops early, returning what it has seen so far, once
/// either figure exceeds its bound: the caller refuses the document then.
pub fn scan(text: &str, max_nesting: usize, max_tokens: usize) -> TextShape {
    let bytes = text.as_bytes();
    let mut shape = TextShape::default();
    let mut open = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        if shape.nesting > max_nesting || shape.tokens > max_tokens {
            break;
        }
        match bytes[i] {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => i += 1,
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' => {
                shape.tokens += 1;
                i = if bytes[i..].starts_with(b"\"\"\"") {
                    skip_block_string(bytes, i + 3)
                } else {
                    skip_string(bytes, i + 1)
                };
            }
            b'{' | b'[' | b'(' => {
                shape.tokens += 1;
                open += 1;
                shape.nesting = shape.nesting.max(open);
                i += 1;
            }
            b'}' | b']' | b')' => {
                shape.tokens += 1;
                open = open.saturating_sub(1);
                i += 1;
            }
            b'.' if bytes[i..].starts_with(b"...") => {
                shape.tokens += 1;
                i += 3;
            }
            byte if byte.is_ascii_alphabetic() || byte == b'_' => {
                shape.tokens += 1;
                while i < bytes.len() && is_name_byte(bytes[i]) {
                    i += 1;
                }
            }
            byte if byte.is_ascii_digit() || byte == b'-' => {
                shape.tokens += 1;
                i += 1;
                while i < bytes.len() && (is_name_byte(bytes[i]) || b".+-".contains(&bytes[i])) {
                    i += 1;
                }
            }
            byte if byte.is_ascii() => {
                // Punctuators (`!`, `$`, `:`, `=`, `@`, `|`, `&`) and stray bytes.
                shape.tokens += 1;
                i += 1;
            }
            _ => {
                // A multi-byte character outside a string: only the BOM is
                // allowed there; anything else is the parser's to reject.
                shape.tokens += 1;
                i += utf8_width(bytes[i]);
            }
        }
    }
    shape
}

fn is_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

fn utf8_width(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// The index just past a `"…"` string whose content starts at `i`. A line
/// break ends it, as the grammar forbids one inside (the parser then
/// rejects the document).
fn skip_string(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            b'\n' | b'\r' => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// The index just past a `"""…"""` block string whose content starts at `i`;
/// `\"""` is the only escape a block string has.
fn skip_block_string(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() {
        if bytes[i..].starts_with(b"\\\"\"\"") {
            i += 4;
        } else if bytes[i..].starts_with(b"\"\"\"") {
            return i + 3;
        } else {
            i += 1;
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(text: &str) -> TextShape {
        scan(text, usize::MAX, usize::MAX)
    }

    #[test]
    fn counts_nesting_of_every_bracket_kind() {
        assert_eq!(shape("{ a }").nesting, 1);
        assert_eq!(shape("{ a(x: [[{ b: 1 }]]) }").nesting, 5);
        assert_eq!(shape("query($v: [[[Int]]] = [[[1]]]) { a }").nesting, 4);
        assert_eq!(shape("{ a } { b { c } }").nesting, 2);
    }

    #[test]
    fn ignores_brackets_in_strings_block_strings_and_comments() {
        assert_eq!(shape(r#"{ a(x: "[[[[{{{{") }"#).nesting, 2);
        assert_eq!(shape(r#"{ a(x: "\"[[[[") }"#).nesting, 2);
        assert_eq!(shape(r#"{ a(x: """ [[[[ \""" [[[[ """) }"#).nesting, 2);
        assert_eq!(shape("{ a # [[[[[[\n }").nesting, 1);
        assert_eq!(shape("{ a(x: \"\\\\\") b(y: [1]) }").nesting, 3);
    }

    #[test]
    fn counts_tokens() {
        assert_eq!(shape("{ a }").tokens, 3);
        assert_eq!(
            shape("query Q($v: Int = -1.5e3) { a(x: $v) ...F }").tokens,
            21
        );
        assert_eq!(
            shape("{ a(x: \"long string with , and spaces\") }").tokens,
            8
        );
        assert_eq!(shape("{ a...F }").tokens, 5);
    }

    #[test]
    fn stops_as_soon_as_a_bound_is_passed() {
        let deep = format!("{{ a(x: {}1{}) }}", "[".repeat(5000), "]".repeat(5000));
        let found = scan(&deep, 32, usize::MAX);
        assert_eq!(found.nesting, 33);
        let long = "{ a } ".repeat(10_000);
        assert_eq!(scan(&long, 32, 100).tokens, 101);
    }

    #[test]
    fn unterminated_strings_and_odd_bytes_do_not_panic() {
        for text in [
            "\"",
            "\"\"\"",
            "\"\\",
            "{ a(x: \"\u{e9}\u{1F600}",
            "\u{feff}{ a }",
            "\\",
        ] {
            let _ = shape(text);
        }
        assert_eq!(shape("é[[").nesting, 2);
    }
}
