//! Read-your-writes: which credentials wrote lately, and when.

use std::sync::{Arc, Mutex};

use futures_util::Stream;

use crate::app::AppState;
use crate::auth::{CredentialId, Principal};

tokio::task_local! {
    /// The credentials that wrote during the current request.
    static WRITERS: Arc<Mutex<Vec<CredentialId>>>;
}

/// Notes that the current request writes as `principal` (called by every
/// change, in its transaction); recorded when the request ends.
pub fn note_write(principal: &Principal) {
    let _ = WRITERS.try_with(|writers| {
        let mut writers = writers.lock().unwrap_or_else(|e| e.into_inner());
        if !writers.contains(&principal.credential) {
            writers.push(principal.credential);
        }
    });
}

pub(super) fn wrote_in_this_request() -> bool {
    WRITERS
        .try_with(|writers| !writers.lock().unwrap_or_else(|e| e.into_inner()).is_empty())
        .unwrap_or(false)
}

/// Runs `work` (one request), then records the writes noted during it: only
/// then have their transactions committed, which is what a replica must be
/// checked against.
pub async fn tracking_writes<T>(state: &AppState, work: impl Future<Output = T>) -> T {
    if state.replicas.is_empty() {
        return work.await;
    }
    let writers = Arc::new(Mutex::new(Vec::new()));
    let output = WRITERS.scope(writers.clone(), work).await;
    for credential in writers.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
        state.replicas.record_write(credential);
    }
    output
}

/// `tracking_writes` for the operations of a WebSocket, whose answers are
/// streams: the writes noted while producing an answer are recorded once
/// it is out.
pub fn tracking_stream_writes<S>(state: AppState, stream: S) -> impl Stream<Item = S::Item>
where
    S: Stream,
{
    let writers = Arc::new(Mutex::new(Vec::new()));
    let mut stream = Box::pin(stream);
    futures_util::stream::poll_fn(move |cx| {
        let polled = WRITERS.sync_scope(writers.clone(), || stream.as_mut().poll_next(cx));
        if polled.is_ready() {
            for credential in writers.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
                state.replicas.record_write(credential);
            }
        }
        polled
    })
}

/// `work`, keeping the current request's write notes wherever it is polled
/// (see `app::within_request`).
pub fn carrying_writes<F: Future>(work: F) -> impl Future<Output = F::Output> {
    let writers = WRITERS.try_with(Clone::clone).ok();
    async move {
        match writers {
            Some(writers) => WRITERS.scope(writers, work).await,
            None => work.await,
        }
    }
}
