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
//! stolen session must not become an unlimited password oracle. Counts are
//! kept per process.
//!
//! Usernames are keyed in the one normal form the database lookup also uses
//! (`normal_username`): a username that breaks the username rule cannot
//! exist, and has no bucket of its own.

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

#[derive(Clone)]
pub struct LoginLimiter {
    settings: LimiterSettings,
    failures_by_username: Window<String>,
    failures_by_address: Window<IpAddr>,
    attempts_by_address: Window<IpAddr>,
    known_addresses: moka::sync::Cache<(String, IpAddr), ()>,
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

/// An attempt counted in advance as a failure. `succeeded` gives the
/// failure back; dropping it keeps the failure counted.
#[must_use = "an attempt counts as failed unless marked as succeeded"]
pub struct Attempt {
    limiter: LoginLimiter,
    username: Option<(String, Instant)>,
    address: Option<(IpAddr, Instant)>,
}

impl Attempt {
    pub fn succeeded(mut self) {
        self.give_back(true);
    }

    fn give_back(&mut self, remember_address: bool) {
        if let Some((username, at)) = self.username.take() {
            self.limiter.failures_by_username.release(&username, at);
            if let (true, Some((address, _))) = (remember_address, self.address) {
                self.limiter.known_addresses.insert((username, address), ());
            }
        }
        if let Some((address, at)) = self.address.take() {
            self.limiter.failures_by_address.release(&address, at);
        }
    }
}

impl LoginLimiter {
    pub fn new(settings: LimiterSettings) -> Self {
        Self {
            settings,
            failures_by_username: Window::new(settings.window),
            failures_by_address: Window::new(settings.window),
            attempts_by_address: Window::new(settings.window),
            known_addresses: moka::sync::Cache::builder()
                .max_capacity(MAX_TRACKED_KEYS)
                .time_to_live(KNOWN_ADDRESS_MEMORY)
                .build(),
        }
    }

    /// Counts an attempt for `username` (as `normal_username` gives it) from
    /// `address`, or refuses it if a limit is reached. Atomic per key: of
    /// any number of concurrent attempts, at most the limit get through.
    pub fn reserve(
        &self,
        check: Check,
        username: Option<&str>,
        address: Option<IpAddr>,
    ) -> Result<Attempt, RetryAfter> {
        let mut attempt = Attempt {
            limiter: self.clone(),
            username: None,
            address: None,
        };
        if let Some(address) = address {
            let at = self
                .failures_by_address
                .reserve(&address, self.settings.max_failures_per_address)?;
            attempt.address = Some((address, at));
            if let Err(retry) = self
                .attempts_by_address
                .reserve(&address, self.settings.max_attempts_per_address)
            {
                // Refused before any hashing: no failure to count.
                attempt.give_back(false);
                return Err(retry);
            }
        }
        if let Some(username) = username {
            let username = username.to_owned();
            let own_address = check == Check::Login
                && address
                    .is_some_and(|a| self.known_addresses.contains_key(&(username.clone(), a)));
            let limit = if own_address {
                usize::MAX
            } else {
                self.settings.max_failures_per_username
            };
            match self.failures_by_username.reserve(&username, limit) {
                Ok(at) => attempt.username = Some((username, at)),
                Err(retry) => {
                    attempt.give_back(false);
                    return Err(retry);
                }
            }
        }
        Ok(attempt)
    }
}

/// Attempt times per key within the window. Keys idle for a whole window are
/// evicted, and the number of keys is bounded, so random usernames cannot
/// exhaust memory.
#[derive(Clone)]
struct Window<K: Hash + Eq + Send + Sync + 'static> {
    window: Duration,
    times: moka::sync::Cache<K, Arc<Mutex<VecDeque<Instant>>>>,
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> Window<K> {
    fn new(window: Duration) -> Self {
        Self {
            window,
            times: moka::sync::Cache::builder()
                .max_capacity(MAX_TRACKED_KEYS)
                .time_to_idle(window)
                .build(),
        }
    }

    /// Records an attempt now unless `limit` attempts are already in the
    /// window; answers the time recorded, to give it back with `release`.
    fn reserve(&self, key: &K, limit: usize) -> Result<Instant, RetryAfter> {
        let times = self.times.get_with_by_ref(key, Default::default);
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
        if times.len() >= limit {
            // Allowed again once enough attempts have left the window.
            let freeing = times[times.len() - limit];
            let wait = self.window.saturating_sub(now.duration_since(freeing));
            return Err(RetryAfter(wait.as_secs_f64().ceil().max(1.0) as u64));
        }
        times.push_back(now);
        Ok(now)
    }

    fn release(&self, key: &K, at: Instant) {
        if let Some(times) = self.times.get(key) {
            let mut times = times
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(position) = times.iter().rposition(|t| *t == at) {
                times.remove(position);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_user: usize, per_address: usize) -> LoginLimiter {
        LoginLimiter::new(LimiterSettings {
            max_failures_per_username: per_user,
            max_failures_per_address: per_address,
            max_attempts_per_address: 1_000,
            window: Duration::from_secs(60),
        })
    }

    fn attempt(limiter: &LoginLimiter, name: &str, address: &str) -> Result<Attempt, RetryAfter> {
        limiter.reserve(
            Check::Login,
            normal_username(name).as_deref(),
            Some(address.parse().unwrap()),
        )
    }

    const ATTACKER: &str = "203.0.113.7";
    const OWN: &str = "198.51.100.9";

    #[test]
    fn usernames_are_limited_case_insensitively() {
        let limiter = limiter(3, 100);
        for name in ["Alice", "ALICE", "alice"] {
            drop(attempt(&limiter, name, ATTACKER).unwrap());
        }
        let RetryAfter(seconds) = attempt(&limiter, "aLiCe", ATTACKER).err().unwrap();
        assert!((1..=60).contains(&seconds), "{seconds}");
        assert!(attempt(&limiter, "bob", ATTACKER).is_ok());
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
    fn attempts_count_before_they_finish_and_success_gives_them_back() {
        let limiter = limiter(3, 100);
        let pending: Vec<Attempt> = (0..3)
            .map(|_| attempt(&limiter, "carol", OWN).unwrap())
            .collect();
        assert!(
            attempt(&limiter, "carol", OWN).is_err(),
            "three attempts in flight use up the limit"
        );
        for pending in pending {
            pending.succeeded();
        }
        assert!(attempt(&limiter, "carol", OWN).is_ok());
    }

    #[test]
    fn the_users_own_address_is_not_locked_out_by_others() {
        let limiter = limiter(3, 100);
        attempt(&limiter, "alice", OWN).unwrap().succeeded();
        for _ in 0..3 {
            drop(attempt(&limiter, "alice", ATTACKER).unwrap());
        }
        assert!(attempt(&limiter, "alice", ATTACKER).is_err());
        assert!(attempt(&limiter, "alice", OWN).is_ok());
        let current_password = limiter.reserve(
            Check::CurrentPassword,
            Some("alice"),
            Some(OWN.parse().unwrap()),
        );
        assert!(
            current_password.is_err(),
            "checks of the current password are limited even from the user's own address"
        );
    }

    #[test]
    fn addresses_are_limited_across_usernames_and_successes_count_too() {
        let limiter = limiter(100, 4);
        for i in 0..4 {
            drop(attempt(&limiter, &format!("user{i}"), ATTACKER).unwrap());
        }
        assert!(attempt(&limiter, "someone-else", ATTACKER).is_err());
        assert!(attempt(&limiter, "someone-else", "203.0.113.8").is_ok());

        let limiter = LoginLimiter::new(LimiterSettings {
            max_failures_per_username: 100,
            max_failures_per_address: 100,
            max_attempts_per_address: 5,
            window: Duration::from_secs(60),
        });
        for _ in 0..5 {
            attempt(&limiter, "dave", OWN).unwrap().succeeded();
        }
        assert!(attempt(&limiter, "dave", OWN).is_err());
    }
}
