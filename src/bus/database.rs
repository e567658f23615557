//! The publisher's own database connection.

use diesel::QueryResult;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use futures_util::future::BoxFuture;

use super::{APPLICATION_NAME, DB_TIMEOUT};
use crate::config::Secret;
use crate::error::{AppError, AppResult};

/// `url` naming this connection in `pg_stat_activity`.
fn with_application_name(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            parsed
                .query_pairs_mut()
                .append_pair("application_name", APPLICATION_NAME);
            parsed.into()
        }
        Err(_) => url.to_owned(),
    }
}

/// The publisher's own database connection, opened again after any error.
pub(super) struct Db {
    url: Secret,
    conn: Option<AsyncPgConnection>,
}

impl Db {
    /// Connects on first use.
    pub(super) fn new(url: Secret) -> Self {
        Self { url, conn: None }
    }

    pub(super) async fn run<T>(
        &mut self,
        query: impl for<'c> FnOnce(&'c mut AsyncPgConnection) -> BoxFuture<'c, QueryResult<T>>,
    ) -> AppResult<T> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => {
                let url = with_application_name(self.url.expose());
                let opening = AsyncPgConnection::establish(&url);
                let opened = tokio::time::timeout(DB_TIMEOUT, opening)
                    .await
                    .map_err(|_| AppError::internal("connecting to the database timed out"))?
                    .map_err(AppError::internal)?;
                self.conn.insert(opened)
            }
        };
        match tokio::time::timeout(DB_TIMEOUT, query(conn)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                self.conn = None;
                Err(error.into())
            }
            Err(_) => {
                // Cut off mid-statement: the connection's state is unknown.
                self.conn = None;
                Err(AppError::internal("a database statement timed out"))
            }
        }
    }
}
