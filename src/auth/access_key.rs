//! Access keys: long-lived credentials of a customer. A key is `vb_` plus 43
//! URL-safe characters (256 bits from the operating system's CSPRNG). It is
//! shown once; only its SHA-256 and a short prefix are stored.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

pub const KEY_PREFIX: &str = "vb_";
/// `tm_last_used` of an access key is written at most this often per process.
pub const KEY_USE_RECORD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);
/// How much of a key is kept in clear, to tell keys apart in listings.
const SHOWN_PREFIX_CHARS: usize = 10;

/// A freshly generated key. `Debug` never prints it.
pub struct NewAccessKey {
    pub token: String,
    pub token_hash: String,
    pub token_prefix: String,
}

impl std::fmt::Debug for NewAccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAccessKey")
            .field("token_prefix", &self.token_prefix)
            .finish_non_exhaustive()
    }
}

pub fn generate() -> NewAccessKey {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let token = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    NewAccessKey {
        token_hash: hash(&token),
        token_prefix: token[..SHOWN_PREFIX_CHARS].to_owned(),
        token,
    }
}

/// Whether a bearer credential is an access key rather than a login token.
pub fn is_access_key(bearer: &str) -> bool {
    bearer.starts_with(KEY_PREFIX)
}

/// The stored form of a key: SHA-256, hex. A fast hash is right here: keys
/// carry 256 random bits, so there is nothing to brute-force.
pub fn hash(token: &str) -> String {
    format!("{:x}", Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_random_and_stored_as_hashes() {
        let first = generate();
        let second = generate();
        assert!(
            first.token.starts_with("vb_") && first.token.len() == 46,
            "{}",
            first.token.len()
        );
        assert!(
            first.token[3..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(first.token, second.token);
        assert_eq!(first.token_hash, hash(&first.token));
        assert_eq!(first.token_hash.len(), 64);
        assert!(first.token.starts_with(&first.token_prefix));
        assert!(!format!("{first:?}").contains(&first.token));
    }
}
