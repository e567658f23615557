//! The platform's resources in the shape its REST API has always written
//! them (snake_case fields, `YYYY-MM-DD HH:MM:SS.ffffff` timestamps with
//! 9999-01-01 for "never"): what the REST endpoints answer and what events
//! carry as their `data`. One definition for both, so that a receiver of
//! events reads the same object a REST client does.

pub mod access_key;
pub mod agent;
pub mod customer;
pub mod time;
