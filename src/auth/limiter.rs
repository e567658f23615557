//! Brute-force defence for login: failed attempts are counted in a sliding
//! window per username and per client address; past the limit, attempts are
//! refused without checking the password, with a hint of when to retry.
//!
//! So that an attacker cannot lock a real user out, the per-username limit
//! does not apply from an address where that username has logged in before
//! (the user's own); the per-address limit still does. Counts are kept per
//! process.

use std::collections::VecDeque;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Addresses remembered as a username's own, after a successful login.
const KNOWN_ADDRESS_MEMORY: Duration = Duration::from_secs(30 * 24 * 3600);
const MAX_TRACKED_KEYS: u64 = 200_000;

#[derive(Clone, Copy, Debug)]
pub struct LimiterSettings {
    pub max_failures_per_username: usize,
    pub max_failures_per_address: usize,
    pub window: Duration,
}

#[derive(Clone)]
pub struct LoginLimiter {
    settings: LimiterSettings,
    by_username: Window<String>,
    by_address: Window<IpAddr>,
    known_addresses: moka::sync::Cache<(String, IpAddr), ()>,
}

/// Refused: retry after this many seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryAfter(pub u64);

impl LoginLimiter {
    pub fn new(settings: LimiterSettings) -> Self {
        Self {
            settings,
            by_username: Window::new(settings.window),
            by_address: Window::new(settings.window),
            known_addresses: moka::sync::Cache::builder()
                .max_capacity(MAX_TRACKED_KEYS)
                .time_to_live(KNOWN_ADDRESS_MEMORY)
                .build(),
        }
    }

    /// Whether an attempt for `username` from `address` may be checked now.
    pub fn check(&self, username: &str, address: Option<IpAddr>) -> Result<(), RetryAfter> {
        let username = username.to_lowercase();
        if let Some(address) = address {
            self.by_address
                .check(&address, self.settings.max_failures_per_address)?;
            if self
                .known_addresses
                .contains_key(&(username.clone(), address))
            {
                return Ok(());
            }
        }
        self.by_username
            .check(&username, self.settings.max_failures_per_username)
    }

    pub fn record_failure(&self, username: &str, address: Option<IpAddr>) {
        self.by_username.record(username.to_lowercase());
        if let Some(address) = address {
            self.by_address.record(address);
        }
    }

    pub fn record_success(&self, username: &str, address: Option<IpAddr>) {
        if let Some(address) = address {
            self.known_addresses
                .insert((username.to_lowercase(), address), ());
        }
    }
}

/// Failure times per key within the window. Keys idle for a whole window are
/// evicted, and the number of keys is bounded, so random usernames cannot
/// exhaust memory.
#[derive(Clone)]
struct Window<K: Hash + Eq + Send + Sync + 'static> {
    window: Duration,
    failures: moka::sync::Cache<K, Arc<Mutex<VecDeque<Instant>>>>,
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> Window<K> {
    fn new(window: Duration) -> Self {
        Self {
            window,
            failures: moka::sync::Cache::builder()
                .max_capacity(MAX_TRACKED_KEYS)
                .time_to_idle(window)
                .build(),
        }
    }

    fn check(&self, key: &K, limit: usize) -> Result<(), RetryAfter> {
        let Some(times) = self.failures.get(key) else {
            return Ok(());
        };
        let mut times = times
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            times.pop_front();
        }
        if times.len() < limit {
            return Ok(());
        }
        // The attempt is allowed again once enough failures have left the window.
        let freeing = times[times.len() - limit];
        let wait = self.window.saturating_sub(now.duration_since(freeing));
        Err(RetryAfter(wait.as_secs_f64().ceil().max(1.0) as u64))
    }

    fn record(&self, key: K) {
        let times = self.failures.get_with(key, Default::default);
        let mut times = times
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        times.push_back(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_user: usize, per_address: usize) -> LoginLimiter {
        LoginLimiter::new(LimiterSettings {
            max_failures_per_username: per_user,
            max_failures_per_address: per_address,
            window: Duration::from_secs(60),
        })
    }

    #[test]
    fn usernames_are_limited_case_insensitively() {
        let limiter = limiter(3, 100);
        let attacker = Some("203.0.113.7".parse().unwrap());
        for _ in 0..3 {
            assert!(limiter.check("Alice", attacker).is_ok());
            limiter.record_failure("ALICE", attacker);
        }
        let RetryAfter(seconds) = limiter.check("alice", attacker).unwrap_err();
        assert!((1..=60).contains(&seconds), "{seconds}");
        assert!(limiter.check("bob", attacker).is_ok());
    }

    #[test]
    fn the_users_own_address_is_not_locked_out_by_others() {
        let limiter = limiter(3, 100);
        let own = Some("198.51.100.9".parse().unwrap());
        let attacker = Some("203.0.113.7".parse().unwrap());
        limiter.record_success("alice", own);
        for _ in 0..10 {
            limiter.record_failure("alice", attacker);
        }
        assert!(limiter.check("alice", attacker).is_err());
        assert!(limiter.check("alice", own).is_ok());
    }

    #[test]
    fn addresses_are_limited_across_usernames() {
        let limiter = limiter(100, 4);
        let address = Some("203.0.113.7".parse().unwrap());
        for i in 0..4 {
            limiter.record_failure(&format!("user{i}"), address);
        }
        assert!(limiter.check("someone-else", address).is_err());
        assert!(
            limiter
                .check("someone-else", Some("203.0.113.8".parse().unwrap()))
                .is_ok()
        );
    }
}
