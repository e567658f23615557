//! Input validation shared by every API surface. Each failure names its field.

use crate::error::{AppError, AppResult};

fn too_long(field: &'static str, max: usize) -> AppError {
    AppError::bad_input(field, format!("`{field}` must be at most {max} characters"))
}

/// PostgreSQL text cannot hold NUL, and no field of ours has a use for it.
fn no_nul(field: &'static str, value: &str) -> AppResult<()> {
    if value.contains('\0') {
        return Err(AppError::bad_input(
            field,
            format!("`{field}` must not contain NUL characters"),
        ));
    }
    Ok(())
}

pub fn max_chars(field: &'static str, value: &str, max: usize) -> AppResult<()> {
    no_nul(field, value)?;
    if value.chars().count() > max {
        return Err(too_long(field, max));
    }
    Ok(())
}

/// A listing's time bounds (`createdAfter`, `createdBefore`): only years
/// PostgreSQL can compare against, as cursors are.
pub fn time_window(
    created_after: Option<chrono::DateTime<chrono::Utc>>,
    created_before: Option<chrono::DateTime<chrono::Utc>>,
) -> AppResult<()> {
    use chrono::Datelike;
    for (field, time) in [
        ("createdAfter", created_after),
        ("createdBefore", created_before),
    ] {
        if time.is_some_and(|t| !(1..=9999).contains(&t.year())) {
            return Err(AppError::bad_input(
                field,
                format!("`{field}` must be within the years 1 to 9999"),
            ));
        }
    }
    Ok(())
}

/// 3–64 ASCII letters, digits and `._@+-`. ASCII only, so that usernames
/// cannot impersonate each other with look-alike characters and lower-casing
/// is the same in Rust and in PostgreSQL.
pub fn username(value: &str) -> AppResult<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._@+-".contains(c);
    if !(3..=64).contains(&value.len()) || !value.chars().all(allowed) {
        return Err(AppError::bad_input(
            "username",
            "`username` must be 3 to 64 characters of letters, digits and . _ @ + -",
        ));
    }
    Ok(())
}

pub fn password(value: &str) -> AppResult<()> {
    no_nul("password", value)?;
    if !(8..=256).contains(&value.chars().count()) {
        return Err(AppError::bad_input(
            "password",
            "`password` must be 8 to 256 characters",
        ));
    }
    Ok(())
}

/// Empty, or an absolute http(s) URL with a host and no user-info, written
/// exactly as the `url` crate serializes it. The parser silently drops tabs
/// and newlines, trims surrounding whitespace and control characters, and
/// rewrites case and escapes; comparing its serialization with the input
/// refuses all of that, so what is stored is what was checked. The one
/// rewrite allowed is the `/` the serializer adds to an empty path
/// (`https://example.com` is `https://example.com/`), which means the same.
pub fn webhook_uri(value: &str) -> AppResult<()> {
    max_chars("webhookUri", value, 1023)?;
    if value.is_empty() {
        return Ok(());
    }
    let url = url::Url::parse(value).map_err(|_| {
        AppError::bad_input(
            "webhookUri",
            "`webhookUri` must be empty or an absolute http(s) URL",
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err(AppError::bad_input(
            "webhookUri",
            "`webhookUri` must be empty or an absolute http(s) URL",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(AppError::bad_input(
            "webhookUri",
            "`webhookUri` must not contain a user name or password",
        ));
    }
    if !is_canonical(&url, value) {
        return Err(AppError::bad_input(
            "webhookUri",
            "`webhookUri` must be written in canonical form: no whitespace or control characters, \
             a lower-case scheme and host, and percent-encoding where URLs need it",
        ));
    }
    Ok(())
}

/// Whether `value` is `url`'s serialization, or that less the `/` of an empty path.
fn is_canonical(url: &url::Url, value: &str) -> bool {
    let canonical = url.as_str();
    if canonical == value {
        return true;
    }
    let authority = &url[..url::Position::BeforePath];
    match value.strip_prefix(authority) {
        Some(rest) if !rest.starts_with('/') && url.path() == "/" => {
            canonical.len() == value.len() + 1 && canonical[authority.len() + 1..] == *rest
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in ["abc", "a.b_c@d+e-f", &"x".repeat(64)] {
            assert!(username(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", &"x".repeat(65), "with space", "ünï", "semi;colon", ""] {
            assert!(username(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_count_characters_not_bytes() {
        assert!(password("éééééééé").is_ok());
        assert!(password("short").is_err());
        assert!(password(&"p".repeat(257)).is_err());
        assert!(password("has\0nul!").is_err());
    }

    #[test]
    fn webhook_uris() {
        for ok in [
            "",
            "https://example.com/hook",
            "http://10.0.0.1:8080/x?y=1",
            "https://example.com/hook?x=1",
            "https://example.com",
            "https://example.com?x=1",
            "https://example.com:8443",
            "http://[::1]:8080/a%20b#frag",
        ] {
            assert!(webhook_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "example.com",
            "ftp://example.com",
            "/relative",
            "https://",
            &format!("https://e.com/{}", "a".repeat(1024)),
            "http://example.com/a\r\nX-Injected: 1",
            "  \thttp://example.com/",
            "http://example.com/ ",
            "http://exam\tple.com/",
            "http://example.com/a\tb",
            "http://example.com/a b",
            "http://user@host/",
            "http://user:pass@host/",
            "http://:pass@host/",
            "http://@host/",
            "javascript:alert(1)",
            "HTTP://example.com/",
            "http://Example.com/",
            "http://example.com:80/",
            "http://example.com/a/../b",
            "http://example.com\\x",
            "https:example.com",
            "https:///example.com",
            "http://example.com/\u{7f}",
            "http://example.com/é",
        ] {
            assert!(webhook_uri(bad).is_err(), "{bad:?}");
        }
    }
}
