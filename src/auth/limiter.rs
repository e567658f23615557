//! Brute-force defence for every check of a password (`login`, and the
//! current password of `changePassword`): attempts are counted in a sliding
//! window per username and per client address; past the limit, attempts are
//! refused without checking the password, with a hint of when to retry.
//!
//! An attempt is counted as a failure *before* the password is hashed
//! (`reserve`), and only given back once it succeeded: concurrent attempts
//! (a batch, aliases, many connections) cannot all pass the check while the
//! first are still hashing, and a client that hangs up mid-hash has spent
//! its attempt. Every attempt from an address, successful or not, also
//! counts against a larger per-address budget, so correct passwords cannot
//! mint sessions without limit either.
//!
//! So that an attacker cannot lock a real user out, the per-username limit
//! on logins does not apply from an address where that username has logged
//! in before (the user's own); the per-address limits still do. A check of
//! the current password (`changePassword`) always counts per username: its
//! caller holds a session, so its address is always a known one, and a
//! stolen session must not become an unlimited password oracle.
//!
//! Counts are kept in PostgreSQL (`db::login_limits`), so the limits hold
//! across every server on the database. This module is the policy: which
//! buckets an attempt counts in, with which limits. Each process remembers
//! the client addresses it has seen refused until their retry time, and
//! refuses them again without asking the database, so that a flood from one
//! address costs the database one statement per window, not one per attempt.
//!
//! Usernames are keyed in the one normal form the database lookup also uses
//! (`normal_username`): a username that breaks the username rule cannot
//! exist, and has no bucket of its own.

use std::net::IpAddr;
use std::time::{Duration, Instant};

const MAX_REMEMBERED_REFUSALS: u64 = 200_000;

#[derive(Clone, Copy, Debug)]
pub struct LimiterSettings {
    pub max_failures_per_username: usize,
    pub max_failures_per_address: usize,
    /// Attempts per address, successful or not.
    pub max_attempts_per_address: usize,
    pub window: Duration,
}

impl LimiterSettings {
    pub fn of(config: &crate::config::Config) -> Self {
        Self {
            max_failures_per_username: config.login_max_failures,
            max_failures_per_address: config.login_max_failures_per_address,
            max_attempts_per_address: config.login_max_attempts_per_address,
            window: Duration::from_secs(config.login_failure_window_seconds),
        }
    }
}

/// Which kind of password check an attempt is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    Login,
    /// The current password, checked for a signed-in agent.
    CurrentPassword,
}

/// Refused: retry after this many seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryAfter(pub u64);

/// The ASCII-lower-cased username, or `None` for a username that breaks the
/// username rule (3–64 ASCII letters, digits and `._@+-`) and so cannot
/// exist. ASCII only, so that this and PostgreSQL's `lower()` agree.
pub fn normal_username(username: &str) -> Option<String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._@+-".contains(c);
    ((3..=64).contains(&username.len()) && username.chars().all(allowed))
        .then(|| username.to_ascii_lowercase())
}

const FAILURES_BY_USERNAME: &str = "fu:";
const FAILURES_BY_ADDRESS: &str = "fa:";
const ATTEMPTS_BY_ADDRESS: &str = "aa:";

/// The buckets one attempt counts in, with their limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub buckets: Vec<String>,
    /// `None`: counted, not limited.
    pub limits: Vec<Option<i32>>,
    /// For logins: the username and address whose having logged in before
    /// lifts the per-username limit.
    pub own_address: Option<(String, IpAddr)>,
}

impl Plan {
    /// Whether a bucket counts failures (given back when the attempt
    /// succeeds), rather than every attempt.
    pub fn is_failure_bucket(bucket: &str) -> bool {
        bucket.starts_with(FAILURES_BY_USERNAME) || bucket.starts_with(FAILURES_BY_ADDRESS)
    }
}

#[derive(Clone)]
pub struct LoginLimiter {
    settings: LimiterSettings,
    /// Address buckets refused by the database, until when.
    refused: moka::sync::Cache<String, Instant>,
}

impl LoginLimiter {
    pub fn new(settings: LimiterSettings) -> Self {
        Self {
            settings,
            refused: moka::sync::Cache::builder()
                .max_capacity(MAX_REMEMBERED_REFUSALS)
                .time_to_live(settings.window)
                .build(),
        }
    }

    pub fn window(&self) -> Duration {
        self.settings.window
    }

    /// The buckets an attempt to check `username`'s password (as
    /// `normal_username` gives it) from `address` counts in.
    pub fn plan(&self, check: Check, username: Option<&str>, address: Option<IpAddr>) -> Plan {
        let limit = |n: usize| Some(i32::try_from(n).unwrap_or(i32::MAX));
        let mut plan = Plan {
            buckets: Vec::new(),
            limits: Vec::new(),
            own_address: None,
        };
        if let Some(address) = address {
            plan.buckets.push(format!("{FAILURES_BY_ADDRESS}{address}"));
            plan.limits
                .push(limit(self.settings.max_failures_per_address));
            plan.buckets.push(format!("{ATTEMPTS_BY_ADDRESS}{address}"));
            plan.limits
                .push(limit(self.settings.max_attempts_per_address));
        }
        if let Some(username) = username {
            plan.buckets
                .push(format!("{FAILURES_BY_USERNAME}{username}"));
            plan.limits
                .push(limit(self.settings.max_failures_per_username));
            if let (Check::Login, Some(address)) = (check, address) {
                plan.own_address = Some((username.to_owned(), address));
            }
        }
        plan
    }

    /// A refusal this process has already heard for one of the plan's
    /// address buckets, still in force. (Username buckets are always asked:
    /// whether they apply depends on the address.)
    pub fn refused_before(&self, plan: &Plan) -> Option<RetryAfter> {
        let now = Instant::now();
        plan.buckets
            .iter()
            .filter(|bucket| !bucket.starts_with(FAILURES_BY_USERNAME))
            .filter_map(|bucket| self.refused.get(bucket))
            .filter(|until| *until > now)
            .max()
            .map(|until| RetryAfter(until.duration_since(now).as_secs_f64().ceil().max(1.0) as u64))
    }

    /// Remembers the database's refusal of these buckets.
    pub fn remember_refusal(&self, buckets: &[String], retry: RetryAfter) {
        let until = Instant::now() + Duration::from_secs(retry.0);
        for bucket in buckets
            .iter()
            .filter(|bucket| !bucket.starts_with(FAILURES_BY_USERNAME))
        {
            self.refused.insert(bucket.clone(), until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> LoginLimiter {
        LoginLimiter::new(LimiterSettings {
            max_failures_per_username: 5,
            max_failures_per_address: 20,
            max_attempts_per_address: 100,
            window: Duration::from_secs(60),
        })
    }

    #[test]
    fn one_normal_form_decides_and_non_ascii_names_do_not_exist() {
        assert_eq!(normal_username("Admin").as_deref(), Some("admin"));
        // U+0130 lower-cases differently in Rust and in PostgreSQL.
        assert_eq!(normal_username("adm\u{130}n"), None);
        assert_eq!(normal_username("ad"), None);
        assert_eq!(normal_username("a d m"), None);
    }

    #[test]
    fn logins_count_per_address_and_username_and_only_logins_spare_the_own_address() {
        let address: IpAddr = "203.0.113.7".parse().unwrap();
        let login = limiter().plan(Check::Login, Some("alice"), Some(address));
        assert_eq!(
            login.buckets,
            ["fa:203.0.113.7", "aa:203.0.113.7", "fu:alice"]
        );
        assert_eq!(login.limits, [Some(20), Some(100), Some(5)]);
        assert_eq!(login.own_address, Some(("alice".to_owned(), address)));
        let current = limiter().plan(Check::CurrentPassword, Some("alice"), Some(address));
        assert_eq!(current.own_address, None);
        let unknown = limiter().plan(Check::Login, None, None);
        assert!(unknown.buckets.is_empty());
        assert!(Plan::is_failure_bucket("fa:1.2.3.4") && Plan::is_failure_bucket("fu:x"));
        assert!(!Plan::is_failure_bucket("aa:1.2.3.4"));
    }

    #[test]
    fn refused_addresses_are_refused_locally_until_their_time_but_usernames_are_not() {
        let limiter = limiter();
        let plan = limiter.plan(
            Check::Login,
            Some("bob"),
            Some("198.51.100.9".parse().unwrap()),
        );
        assert_eq!(limiter.refused_before(&plan), None);
        limiter.remember_refusal(&["fu:bob".to_owned()], RetryAfter(30));
        assert_eq!(limiter.refused_before(&plan), None);
        limiter.remember_refusal(&["fa:198.51.100.9".to_owned()], RetryAfter(30));
        let RetryAfter(seconds) = limiter.refused_before(&plan).unwrap();
        assert!((29..=30).contains(&seconds), "{seconds}");
    }
}
