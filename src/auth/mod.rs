//! Credentials: password hashing, signed login tokens, and the `Principal`
//! every request acts as.

pub mod access_key;
pub mod cache;
pub mod limiter;
pub mod password;
pub mod principal;
pub mod revocation;
pub mod token;

pub use password::PasswordHasher;
pub use principal::{CredentialId, Permission, Principal};
pub use token::TokenSigner;
