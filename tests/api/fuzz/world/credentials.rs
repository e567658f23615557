//! Placeholders and credentials. Cases are generated before the world
//! exists and outlive its principals, so they name ids, passwords and
//! tokens by placeholder; the headers are spelled as real and broken
//! clients spell them, to reach every branch of the credential parsing.

use base64::Engine;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};

use super::super::requests::{Case, Role, Who};
use super::super::values::mark;
use super::World;
use crate::harness::ADMIN_PASSWORD;

impl World {
    fn resolve(&mut self, name: &str, who: Who) -> String {
        match name {
            "cust" => self.customer.clone(),
            "other" => self.other.clone(),
            "platform" => self.platform.clone(),
            "cadmin" => self.customer_admin.id.clone(),
            "agent" => self.agent.id.clone(),
            "sadmin" => self.super_admin.id.clone(),
            "otheragent" => self.other_agent.clone(),
            "key" => self.key.0.clone(),
            "deadkey" => self.dead_key.0.clone(),
            "pw" if who.role == Role::SuperAdmin => ADMIN_PASSWORD.to_owned(),
            "pw" | "cpw" => self.customer_password.clone(),
            "apw" => ADMIN_PASSWORD.to_owned(),
            "newpw" => self.new_password.clone(),
            "uname" => match who.role {
                Role::SuperAdmin => self.super_admin.username.clone(),
                Role::Agent => self.agent.username.clone(),
                _ => self.customer_admin.username.clone(),
            },
            "cuname" => self.customer_admin.username.clone(),
            "fresh" => {
                self.seq += 1;
                format!("fz{}", self.seq)
            }
            // A new valid password, unlike any other: one the server took
            // must never come back, in a reply or a log line.
            "freshpw" => {
                self.seq += 1;
                let run = self.new_password.trim_start_matches("fuzz-new-pw-");
                let password = format!("fuzz-fresh-{run}-{}", self.seq);
                self.secrets.push(password.clone());
                password
            }
            // A lone surrogate escape: only meaningful in JSON text.
            "lone" => "\\ud800".to_owned(),
            other => mark(other),
        }
    }

    /// `text` with its placeholders filled in (`⟪pad⟫` is left for `pad`).
    pub(super) fn fill(&mut self, text: &str, who: Who) -> String {
        const OPEN: char = '\u{27EA}';
        const CLOSE: char = '\u{27EB}';
        if !text.contains(OPEN) {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find(OPEN) {
            out.push_str(&rest[..start]);
            let after = &rest[start + OPEN.len_utf8()..];
            match after.find(CLOSE) {
                Some(end) if end <= 12 => {
                    let value = self.resolve(&after[..end], who);
                    out.push_str(&value);
                    rest = &after[end + CLOSE.len_utf8()..];
                }
                _ => {
                    out.push(OPEN);
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }

    pub(super) fn token(&self, role: Role) -> Option<String> {
        Some(match role {
            Role::SuperAdmin => self.super_admin.token.clone(),
            Role::CustomerAdmin => self.customer_admin.token.clone(),
            Role::Agent => self.agent.token.clone(),
            Role::AccessKey => self.key.1.clone(),
            Role::Revoked => self.revoked.clone(),
            Role::DeadKey => self.dead_key.1.clone(),
            Role::Forged => self.forged(0),
            Role::Nobody | Role::Malformed => return None,
        })
    }

    /// Bearer tokens the server never issued, some close to real ones.
    fn forged(&self, variant: u8) -> String {
        let b64 = |text: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text);
        let real = &self.super_admin.token;
        match variant % 6 {
            0 => format!(
                "{}.{}.",
                b64(r#"{"alg":"none","typ":"JWT"}"#),
                b64(&format!(
                    r#"{{"sub":"{}","iat":0,"exp":4102444800,"jti":"{}"}}"#,
                    self.super_admin.id, self.super_admin.id
                ))
            ),
            1 => format!("vb_{}", "A".repeat(40 + usize::from(variant % 7))),
            2 => "x".repeat(8_000),
            3 => {
                let mut forged = real.clone();
                let last = forged.pop().unwrap_or('A');
                forged.push(if last == 'A' { 'B' } else { 'A' });
                forged
            }
            4 => {
                let parts: Vec<&str> = real.split('.').collect();
                let claims = format!(
                    r#"{{"sub":"{}","iat":0,"exp":4102444800,"jti":"00000000-0000-0000-0000-000000000000"}}"#,
                    self.super_admin.id
                );
                format!(
                    "{}.{}.{}",
                    parts.first().unwrap_or(&""),
                    b64(&claims),
                    parts.last().unwrap_or(&"")
                )
            }
            _ => "eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN_a9IV7pAx_Zmeo".into(),
        }
    }

    fn authorization(&self, who: Who) -> Option<HeaderValue> {
        let v = who.variant;
        let real = &self.super_admin.token;
        let text = match who.role {
            Role::Nobody => return None,
            Role::Malformed => match v % 9 {
                0 => "Basic YWRtaW46Ym9vdHN0cmFw".to_owned(),
                1 => "Bearer".into(),
                2 => "Bearer    ".into(),
                3 => "bearer".into(),
                4 => format!("Token {real}"),
                5 => return HeaderValue::from_bytes(b"Bearer \xff\xfe\xfd").ok(),
                6 => format!("Bearer {real} extra"),
                7 => format!("Bearer {real},Bearer {real}"),
                _ => real.clone(),
            },
            Role::Forged => format!("Bearer {}", self.forged(v)),
            role => {
                let token = self.token(role)?;
                let scheme = match v % 8 {
                    0 => "bearer",
                    1 => "BEARER",
                    _ => "Bearer",
                };
                let gap = if v % 11 == 0 { "   " } else { " " };
                let tail = if v % 13 == 0 { " " } else { "" };
                format!("{scheme}{gap}{token}{tail}")
            }
        };
        HeaderValue::from_str(&text).ok()
    }

    pub(super) fn headers(&self, case: &Case, n: u64, step: usize) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(value) = self.authorization(case.who) {
            headers.insert(AUTHORIZATION, value);
        }
        if let Some(value) = case
            .forwarded_for
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            headers.insert("x-forwarded-for", value);
        }
        let id = case
            .request_id
            .clone()
            .unwrap_or_else(|| format!("fuzz-{n}-{step}"));
        if let Ok(value) = HeaderValue::from_str(&id) {
            headers.insert("x-request-id", value);
        }
        headers
    }
}
