//! Signed login tokens (JWT, HS256) with standard `sub`, `iat` and `exp` claims.

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
    iat: i64,
    exp: i64,
}

pub struct IssuedToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub struct TokenSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl: chrono::Duration,
}

impl TokenSigner {
    pub fn new(secret: &Secret, ttl_seconds: u64) -> Self {
        let key = secret.expose().as_bytes();
        Self {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            ttl: chrono::Duration::seconds(i64::try_from(ttl_seconds).unwrap_or(i64::MAX / 1000)),
        }
    }

    pub fn issue(&self, agent_id: Uuid) -> AppResult<IssuedToken> {
        let now = Utc::now().timestamp();
        let exp = now.saturating_add(self.ttl.num_seconds());
        let expires_at = DateTime::from_timestamp(exp, 0)
            .ok_or_else(|| AppError::internal("token expiry out of range"))?;
        let claims = Claims {
            sub: agent_id,
            iat: now,
            exp,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(AppError::internal)?;
        Ok(IssuedToken { token, expires_at })
    }

    /// The agent id in a valid, unexpired token signed by us.
    pub fn verify(&self, token: &str) -> AppResult<Uuid> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map(|data| data.claims.sub)
            .map_err(|_| AppError::Unauthenticated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_with_the_key_that_signed_them() {
        let signer = TokenSigner::new(&Secret::new("one"), 60);
        let other = TokenSigner::new(&Secret::new("two"), 60);
        let agent = Uuid::new_v4();
        let issued = signer.issue(agent).unwrap();
        assert_eq!(signer.verify(&issued.token).unwrap(), agent);
        assert!(other.verify(&issued.token).is_err());
        assert!(signer.verify("garbage").is_err());
    }

    #[test]
    fn expired_tokens_are_rejected() {
        let signer = TokenSigner::new(&Secret::new("k"), 60);
        let claims = Claims {
            sub: Uuid::new_v4(),
            iat: 0,
            exp: Utc::now().timestamp() - 1,
        };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"k"),
        )
        .unwrap();
        assert!(signer.verify(&token).is_err());
    }
}
