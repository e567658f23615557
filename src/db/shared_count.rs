//! A count that many requests may ask for at once (`totalCount` of the
//! customers, a `count(*)` over every live row): computed by one of them,
//! shared by the others, and reused until the data may have changed.
//!
//! "May have changed" is the credential cache's epoch: every delete of a
//! customer (`tm_delete`), made by any replica or by hand in SQL, notifies
//! every process, which moves the epoch on; this process's own creates move
//! its local epoch. A customer created by another replica is not announced,
//! and shows in the count within `MAX_AGE`. While a process is not listening
//! it cannot know, and counts afresh each time (still one at a time).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::auth::cache::CredentialCache;
use crate::error::AppResult;

/// A safety net: a count is never older than this.
const MAX_AGE: Duration = Duration::from_secs(60);

/// The credential cache's epoch and this process's own, when a count was read.
type Epochs = (u64, u64);

#[derive(Default)]
pub struct SharedCount {
    /// The last count, with the epochs and time it was read at. Held across
    /// the computation, so that concurrent callers wait for one count.
    last: tokio::sync::Mutex<Option<(Epochs, Instant, i64)>>,
    /// Moved on by this process's own changes, which must show at once,
    /// before their notification comes back.
    local_epoch: AtomicU64,
}

impl SharedCount {
    pub async fn get<F, Fut>(&self, credentials: &CredentialCache, count: F) -> AppResult<i64>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = AppResult<i64>>,
    {
        let mut last = self.last.lock().await;
        let epoch = (credentials.epoch(), self.local_epoch.load(Ordering::SeqCst));
        let listening = credentials.is_listening();
        if let Some((read_at, at, value)) = *last
            && listening
            && read_at == epoch
            && at.elapsed() < MAX_AGE
        {
            return Ok(value);
        }
        let value = count().await?;
        // Valid only if nothing changed while counting.
        let unchanged = (credentials.epoch(), self.local_epoch.load(Ordering::SeqCst)) == epoch;
        *last = unchanged.then(|| (epoch, Instant::now(), value));
        Ok(value)
    }

    /// Forgets the count: this process has just changed what it counts.
    pub fn invalidate(&self) {
        self.local_epoch.fetch_add(1, Ordering::SeqCst);
    }
}
