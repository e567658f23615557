//! Signed login tokens (JWT, HS256) with the standard `sub`, `iat`, `exp` and
//! `jti` claims. `jti` names the session row, so one token can be revoked.
//! Several keys may verify, so that tokens survive a key rotation; the first signs.

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::Secret;
use crate::error::{AppError, AppResult};

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The agent the token was issued to.
    sub: Uuid,
    /// The session the token belongs to.
    jti: Uuid,
    iat: i64,
    exp: i64,
}

/// What a valid token says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenClaims {
    pub agent_id: Uuid,
    pub session_id: Uuid,
}

pub struct IssuedToken {
    pub token: String,
    pub session_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("session_id", &self.session_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub struct TokenSigner {
    encoding: EncodingKey,
    decoding: Vec<DecodingKey>,
    ttl_seconds: i64,
}

/// Shortest signing key accepted: HS256 keys shorter than its 256-bit
/// output can be brute-forced offline from any one token.
pub const MIN_SECRET_BYTES: usize = 32;

/// A short, one-way tag of a session id for the logs: the id is a token's
/// `jti`, and with a weak signing key it is all one needs to forge one.
pub fn session_tag(session_id: Uuid) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(session_id.as_bytes());
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

impl TokenSigner {
    /// `secrets[0]` signs; every one of them verifies. Refuses keys shorter
    /// than `MIN_SECRET_BYTES`.
    pub fn new(secrets: &[Secret], ttl_seconds: u64) -> AppResult<Self> {
        let first = secrets
            .first()
            .ok_or_else(|| AppError::internal("no token signing key"))?;
        if let Some(position) = secrets
            .iter()
            .position(|s| s.expose().len() < MIN_SECRET_BYTES)
        {
            return Err(AppError::bad_input(
                "TOKEN_SECRET",
                format!(
                    "TOKEN_SECRET: signing key number {} is shorter than {MIN_SECRET_BYTES} bytes; \
                     use a random key of at least {MIN_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`)",
                    position + 1
                ),
            ));
        }
        Ok(Self {
            encoding: EncodingKey::from_secret(first.expose().as_bytes()),
            decoding: secrets
                .iter()
                .map(|s| DecodingKey::from_secret(s.expose().as_bytes()))
                .collect(),
            ttl_seconds: i64::try_from(ttl_seconds).unwrap_or(i64::MAX),
        })
    }

    pub fn issue(&self, agent_id: Uuid) -> AppResult<IssuedToken> {
        let now = Utc::now().timestamp();
        let exp = now.saturating_add(self.ttl_seconds);
        let expires_at = DateTime::from_timestamp(exp, 0)
            .ok_or_else(|| AppError::internal("token expiry out of range"))?;
        let session_id = Uuid::new_v4();
        let claims = Claims {
            sub: agent_id,
            jti: session_id,
            iat: now,
            exp,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(AppError::internal)?;
        Ok(IssuedToken {
            token,
            session_id,
            expires_at,
        })
    }

    /// The claims of a valid, unexpired token signed with one of our keys.
    pub fn verify(&self, token: &str) -> AppResult<TokenClaims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iat", "sub", "jti"]);
        self.decoding
            .iter()
            .find_map(|key| jsonwebtoken::decode::<Claims>(token, key, &validation).ok())
            .map(|data| TokenClaims {
                agent_id: data.claims.sub,
                session_id: data.claims.jti,
            })
            .ok_or(AppError::Unauthenticated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A signer whose keys are the given names padded to a valid length.
    fn signer(keys: &[&str]) -> TokenSigner {
        let secrets: Vec<Secret> = keys.iter().map(|k| Secret::new(padded(k))).collect();
        TokenSigner::new(&secrets, 60).unwrap()
    }

    fn padded(key: &str) -> String {
        format!("{key:-<32}")
    }

    #[test]
    fn short_keys_are_refused_with_a_clear_message() {
        let short = TokenSigner::new(
            &[Secret::new(padded("ok")), Secret::new("zzz-tiny-key")],
            60,
        );
        let message = short.err().unwrap().to_string();
        assert!(
            message.contains("number 2") && message.contains("32 bytes"),
            "{message}"
        );
        assert!(
            !message.contains("zzz-tiny-key"),
            "the key itself is not echoed: {message}"
        );
    }

    #[test]
    fn session_tags_are_short_and_do_not_reveal_the_id() {
        let id = Uuid::new_v4();
        let tag = session_tag(id);
        assert_eq!(tag.len(), 12);
        assert!(!id.simple().to_string().contains(&tag));
        assert_eq!(tag, session_tag(id));
    }

    #[test]
    fn tokens_verify_only_with_the_keys_that_signed_them() {
        let agent = Uuid::new_v4();
        let issued = signer(&["one"]).issue(agent).unwrap();
        let claims = signer(&["one"]).verify(&issued.token).unwrap();
        assert_eq!(claims.agent_id, agent);
        assert_eq!(claims.session_id, issued.session_id);
        assert!(signer(&["two"]).verify(&issued.token).is_err());
        assert!(signer(&["one"]).verify("garbage").is_err());
    }

    #[test]
    fn tokens_survive_a_key_rotation() {
        let old = signer(&["old"]).issue(Uuid::new_v4()).unwrap();
        let rotated = signer(&["new", "old"]);
        assert!(rotated.verify(&old.token).is_ok());
        let new = rotated.issue(Uuid::new_v4()).unwrap();
        assert!(
            signer(&["new"]).verify(&new.token).is_ok(),
            "the first key signs"
        );
    }

    #[test]
    fn expired_tokens_are_rejected() {
        let claims = Claims {
            sub: Uuid::new_v4(),
            jti: Uuid::new_v4(),
            iat: 0,
            exp: Utc::now().timestamp() - 1,
        };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(padded("k").as_bytes()),
        )
        .unwrap();
        assert!(signer(&["k"]).verify(&token).is_err());
    }
}
