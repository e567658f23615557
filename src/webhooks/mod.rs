//! Delivers events to customers' webhooks, at least once. The queue lives in
//! PostgreSQL (`db::models::webhook_delivery`): a delivery is queued in its
//! event's transaction, every server runs a worker that claims due
//! deliveries under a lease, and a delivery whose server died mid-attempt is
//! claimed again once its lease runs out; one that stops cleanly hands back
//! what it has not settled at once (`worker`). Each customer's deliveries go out
//! in event order, one at a time, so a customer whose endpoint keeps failing
//! holds back only its own.

pub mod guard;
mod worker;

pub use worker::{Shutdown, spawn_worker};

use std::time::Duration;

use chrono::Utc;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

use crate::app::AppState;
use crate::db::models::webhook_delivery::{self, ClaimedDelivery, Settlement};
use crate::error::{AppError, AppResult, error_chain};
use crate::telemetry::traces;

/// Response body bytes read at most: only the status matters.
const MAX_RESPONSE_BYTES: usize = 16 * 1024;

/// Signs a webhook body: `sha256=<lower-case hex HMAC-SHA256 of the body>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(body);
    format!("sha256={:x}", mac.finalize().into_bytes())
}

/// The body delivered for an event: `{"type": …, "data": …}`.
pub fn body(event_type: &str, data: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "type": event_type, "data": data }))
        .expect("a JSON value always serializes")
}

/// What one attempt came to.
#[derive(Debug)]
enum Outcome {
    /// The endpoint answered 2xx.
    Delivered(u16),
    /// Not worth retrying: a 4xx other than 408/429, a redirect, a refused
    /// target or URL.
    Rejected { status: Option<u16>, error: String },
    /// Worth retrying: 5xx, 408, 429, timeouts, connection failures.
    Failed { status: Option<u16>, error: String },
}

fn outcome_of_status(status: reqwest::StatusCode) -> Outcome {
    let code = status.as_u16();
    if status.is_success() {
        Outcome::Delivered(code)
    } else if status.is_server_error() || code == 408 || code == 429 {
        Outcome::Failed {
            status: Some(code),
            error: format!("the endpoint answered {code}"),
        }
    } else {
        Outcome::Rejected {
            status: Some(code),
            error: format!("the endpoint answered {code}"),
        }
    }
}

/// The worker's HTTP client: no redirects, no proxies from the environment,
/// bounded connect and total time, names resolved through the guard.
fn client(state: &AppState) -> AppResult<reqwest::Client> {
    let timeout = Duration::from_millis(state.config.webhook_timeout_ms);
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .timeout(timeout)
        .user_agent(concat!("voipbin-customer-api/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(guard::GuardedResolver::shared(
            state.config.webhook_allow_private_targets,
        ))
        .build()
        .map_err(AppError::internal)
}

/// Sends one claimed delivery.
async fn attempt(
    client: &reqwest::Client,
    allow_private: bool,
    delivery: &ClaimedDelivery,
) -> Outcome {
    let rejected = |error: String| Outcome::Rejected {
        status: None,
        error,
    };
    if delivery.webhook_uri.is_empty() {
        return rejected("the customer has no webhook any more".into());
    }
    let Ok(url) = url::Url::parse(&delivery.webhook_uri) else {
        return rejected("the webhook URI does not parse".into());
    };
    if !matches!(url.scheme(), "http" | "https") {
        return rejected("the webhook URI is not http(s)".into());
    }
    // A literal address never reaches the resolver: check it here.
    let literal = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
        _ => None,
    };
    if let Some(ip) = literal
        && !allow_private
        && !guard::is_public(ip)
    {
        return rejected(format!("refused target: {ip} is not a public address"));
    }
    let method = match delivery.webhook_method.as_deref() {
        Some("GET") => reqwest::Method::GET,
        Some("PUT") => reqwest::Method::PUT,
        Some("DELETE") => reqwest::Method::DELETE,
        _ => reqwest::Method::POST,
    };
    let body = body(&delivery.event_type, &delivery.data);
    // The attempt's span (traces on): the endpoint may continue its trace.
    let mut trace = reqwest::header::HeaderMap::new();
    traces::inject_current(&mut trace);
    let request = client
        .request(method, url)
        .headers(trace)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(
            "X-VoIPBIN-Signature",
            signature(&delivery.webhook_secret, &body),
        )
        .header("X-VoIPBIN-Event-Id", delivery.event_id.to_string())
        .body(body);
    match request.send().await {
        Ok(mut response) => {
            let outcome = if response.status().is_redirection() {
                let code = response.status().as_u16();
                Outcome::Rejected {
                    status: Some(code),
                    error: format!("the endpoint redirected ({code}); redirects are not followed"),
                }
            } else {
                outcome_of_status(response.status())
            };
            // Read a little of the body so the connection can be reused,
            // never all of it: an endpoint may answer without end.
            let mut read = 0;
            while read < MAX_RESPONSE_BYTES {
                match response.chunk().await {
                    Ok(Some(chunk)) => read += chunk.len(),
                    _ => break,
                }
            }
            outcome
        }
        Err(error) => {
            // Without the URL: a customer's webhook URI may carry a token of
            // theirs in its query, and this text is logged and stored.
            let error = error_chain(&error.without_url());
            // The guard's refusal, from the resolver: no retry will pass it.
            if error.contains("refused target") {
                Outcome::Rejected {
                    status: None,
                    error,
                }
            } else {
                Outcome::Failed {
                    status: None,
                    error,
                }
            }
        }
    }
}

/// When to try again after `attempts` failed attempts: exponential from the
/// base, capped, with full jitter so that retries of many deliveries spread out.
fn retry_delay(base_ms: u64, max_ms: u64, attempts: i32) -> Duration {
    let exponent = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(30);
    let ceiling = base_ms.saturating_mul(1 << exponent).min(max_ms).max(1);
    let jittered = rand::thread_rng().gen_range(ceiling / 2..=ceiling);
    Duration::from_millis(jittered)
}

async fn settle(
    state: &AppState,
    connections: &worker::Connections,
    delivery: &ClaimedDelivery,
    outcome: Outcome,
) -> AppResult<()> {
    let config = &state.config;
    let (settlement, status, error) = match outcome {
        Outcome::Delivered(status) => (Settlement::Delivered, Some(status), None),
        Outcome::Rejected { status, error } => (Settlement::Failed, status, Some(error)),
        Outcome::Failed { status, error } => {
            let exhausted =
                delivery.attempts >= i32::try_from(config.webhook_max_attempts).unwrap_or(i32::MAX);
            let settlement = if exhausted {
                Settlement::Failed
            } else {
                let delay = retry_delay(
                    config.webhook_retry_base_ms,
                    config.webhook_retry_max_ms,
                    delivery.attempts,
                );
                Settlement::RetryAt(
                    Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default(),
                )
            };
            (settlement, status, Some(error))
        }
    };
    match (&settlement, &error) {
        (Settlement::Delivered, _) => {
            tracing::debug!(event_id = %delivery.event_id, "webhook delivered")
        }
        (_, Some(error)) => tracing::info!(
            event_id = %delivery.event_id,
            customer_id = %delivery.customer_id,
            attempt = delivery.attempts,
            outcome = ?settlement,
            %error,
            "webhook attempt failed"
        ),
        _ => {}
    }
    traces::finish_webhook_span(
        &tracing::Span::current(),
        status,
        match settlement {
            Settlement::Delivered => "delivered",
            Settlement::RetryAt(_) => "retry",
            Settlement::Failed => "failed",
        },
    );
    let status = status.map(i32::from);
    let mut conn = connections.get(state).await?;
    webhook_delivery::settle(&mut conn, delivery, &settlement, status, error.as_deref()).await?;
    // Counted once recorded: an attempt that could not be recorded is made
    // again after its lease, and counted then.
    state.metrics.record_webhook_delivery(match settlement {
        Settlement::Delivered => "delivered",
        Settlement::RetryAt(_) => "retry",
        Settlement::Failed => "failed",
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_in_lower_case_hex() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn retries_back_off_within_bounds() {
        for attempts in 1..40 {
            let delay = retry_delay(1_000, 60_000, attempts).as_millis() as u64;
            let ceiling = (1_000u64 << (attempts - 1).min(30)).min(60_000);
            assert!(
                (ceiling / 2..=ceiling).contains(&delay),
                "{attempts}: {delay}"
            );
        }
    }

    #[test]
    fn statuses_are_classified() {
        use reqwest::StatusCode;
        assert!(matches!(
            outcome_of_status(StatusCode::NO_CONTENT),
            Outcome::Delivered(204)
        ));
        for retried in [500, 502, 503, 408, 429] {
            let status = StatusCode::from_u16(retried).unwrap();
            assert!(
                matches!(outcome_of_status(status), Outcome::Failed { .. }),
                "{retried}"
            );
        }
        for rejected in [400, 401, 403, 404, 410, 422] {
            let status = StatusCode::from_u16(rejected).unwrap();
            assert!(
                matches!(outcome_of_status(status), Outcome::Rejected { .. }),
                "{rejected}"
            );
        }
    }
}
