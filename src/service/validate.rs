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

pub fn webhook_uri(value: &str) -> AppResult<()> {
    max_chars("webhookUri", value, 1023)?;
    if value.is_empty() {
        return Ok(());
    }
    match url::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Ok(()),
        _ => Err(AppError::bad_input(
            "webhookUri",
            "`webhookUri` must be empty or an absolute http(s) URL",
        )),
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
        for ok in ["", "https://example.com/hook", "http://10.0.0.1:8080/x?y=1"] {
            assert!(webhook_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "example.com",
            "ftp://example.com",
            "/relative",
            "https://",
            &format!("https://e.com/{}", "a".repeat(1024)),
        ] {
            assert!(webhook_uri(bad).is_err(), "{bad}");
        }
    }
}
