//! Credentials: password hashing, signed login tokens, and the `Principal`
//! every request acts as.

pub mod password;
pub mod principal;
pub mod token;

pub use password::PasswordHasher;
pub use principal::{Permission, Principal};
pub use token::TokenSigner;
