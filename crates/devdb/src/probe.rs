//! Asking a server over TCP whether it is there and whether it is ready:
//! `pg_ctl` knows only about the cluster in our data directory.

use std::time::Duration;

/// Whether a PostgreSQL server answers at `url` within `timeout`. A server
/// that refuses the login or lacks the database still answers: customer-api
/// asks this to decide whether a server is there, not whether it is ready.
pub async fn server_answers(url: &str, timeout: Duration) -> bool {
    match tokio::time::timeout(timeout, tokio_postgres::connect(url, tokio_postgres::NoTls)).await {
        Ok(Ok((client, connection))) => {
            drop(client);
            let _ = connection.await;
            true
        }
        Ok(Err(error)) => error.as_db_error().is_some(),
        Err(_) => false,
    }
}

/// Connects until a query succeeds: `pg_ctl start -w` has waited already, but
/// a joined server may still be starting or recovering.
pub(crate) async fn wait_until_accepting(url: &str, timeout: Duration) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let attempt = async {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
            let connection = tokio::spawn(connection);
            let result = client.simple_query("SELECT 1").await.map(drop);
            drop(client);
            let _ = connection.await;
            result
        };
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let last_error =
            match tokio::time::timeout(remaining.min(Duration::from_secs(5)), attempt).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(error)) => error.to_string(),
                Err(_) => "connecting timed out".to_owned(),
            };
        if tokio::time::Instant::now() + Duration::from_millis(100) >= deadline {
            return Err(last_error);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
