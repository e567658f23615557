//! The fuzzed server, the principals the cases act as, and the execution of
//! a case over real HTTP with every reply checked.
//!
//! Cases name ids, passwords and usernames by placeholder (`⟪cust⟫`,
//! `⟪pw⟫`, `⟪fresh⟫`, …); they are filled in when the case runs, from the
//! principals of that moment. A case that may have logged a principal out,
//! changed its password or deleted what it depends on is followed by a
//! check of every principal, and the broken ones are rebuilt (a reset
//! password and a new login, a new key, a new customer), so later cases
//! act as intended and a run stays reproducible from its seed.
//!
//! The parts: `principals` (making and repairing who the cases act as),
//! `credentials` (placeholders and the headers that carry credentials),
//! `graphql` (POST and GET to `/graphql`), `apq` (persisted queries),
//! `rest`, `rest_bodies` and `rest_checks` (the REST endpoints), `raw`
//! (requests that must be read off the wire to judge the connection).
//! This file holds the state they share, sending, and the dispatch of a
//! case.

mod apq;
mod credentials;
mod graphql;
mod principals;
mod raw;
mod rest;
mod rest_bodies;
mod rest_checks;

use std::time::Duration;

use serde_json::json;

use self::graphql::graphql_outcome;
use self::raw::raw_exchange;
use super::checks::{self, Class, Reply};
use super::requests::{Case, Kind};
use super::values::clip;
use crate::harness::{ADMIN_PASSWORD, TestApp};

/// The liveness bound of every request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_BATCH_SIZE: usize = 10;

#[derive(Clone)]
struct Principal {
    id: String,
    username: String,
    token: String,
    /// The password hash when the principal was made: a change means the
    /// fuzzer no longer knows its password.
    hash: String,
}

/// What a case did: how far it got, and the limits that refused it.
pub struct Outcome {
    pub class: Class,
    pub limits: Vec<String>,
    /// Responses that were `{"data": null}` alone (every root field skipped).
    pub null_data: u32,
}

pub struct World {
    pub app: TestApp,
    /// Keeps connections alive between requests, as real clients do.
    http: reqwest::Client,
    /// A new connection for every request: liveness alone.
    probe: reqwest::Client,
    db: tokio_postgres::Client,
    /// The bootstrap admin's token: never given to a case.
    maintenance: String,
    /// Every password and credential the fuzzer sends.
    pub secrets: Vec<String>,
    customer_password: String,
    new_password: String,
    seq: u64,
    platform: String,
    super_admin: Principal,
    customer: String,
    customer_admin: Principal,
    agent: Principal,
    key: (String, String),
    other: String,
    other_agent: String,
    revoked: String,
    dead_key: (String, String),
    pub rebuilt: u32,
    pub requests: u32,
}

impl World {
    pub async fn new() -> Self {
        let app = TestApp::spawn_with(|config| {
            // Cases come from many addresses, some of them forged.
            config.trust_forwarded_for = true;
            // So that logins keep reaching the password check all run long;
            // the per-username limits stay as configured.
            config.login_max_failures_per_address = 1_000_000;
            config.login_max_attempts_per_address = 1_000_000;
        })
        .await;
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            // Below the server's keep-alive timeout (5 s), so that the pool
            // never offers a connection the server closed for idleness.
            .pool_idle_timeout(Duration::from_secs(3))
            .build()
            .unwrap();
        let probe = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let db = app.db.client().await;
        let maintenance = app.admin_token().await;
        let platform = app.own_customer_id(&maintenance).await;
        let run = uuid::Uuid::new_v4().simple().to_string();
        let customer_password = format!("fuzz-pw-{run}");
        let new_password = format!("fuzz-new-pw-{run}");
        let placeholder = || Principal {
            id: String::new(),
            username: String::new(),
            token: String::new(),
            hash: String::new(),
        };
        let mut world = Self {
            app,
            http,
            probe,
            db,
            secrets: vec![
                ADMIN_PASSWORD.to_owned(),
                customer_password.clone(),
                new_password.clone(),
                maintenance.clone(),
            ],
            maintenance,
            customer_password,
            new_password,
            seq: 0,
            platform,
            super_admin: placeholder(),
            customer: String::new(),
            customer_admin: placeholder(),
            agent: placeholder(),
            key: Default::default(),
            other: String::new(),
            other_agent: String::new(),
            revoked: String::new(),
            dead_key: Default::default(),
            rebuilt: 0,
            requests: 0,
        };
        world.new_super_admin().await;
        world.new_customer().await;
        world.new_other_customer().await;
        // A logged-out token and a deleted key, of the fuzzed customer's agents.
        let agent = world.agent.username.clone();
        let revoked = world.app.token(&agent, &world.customer_password).await;
        world.app.logout(&revoked).await;
        world.secrets.push(revoked.clone());
        world.revoked = revoked;
        let (id, key) = world
            .app
            .create_access_key_ok(&world.customer_admin.token, json!({ "name": "dead" }))
            .await;
        world
            .app
            .delete_access_key(&world.customer_admin.token, &id)
            .await;
        world.secrets.push(key.clone());
        world.dead_key = (id, key);
        world
    }

    /// `/healthz` answers, in time, on a new connection (the server is
    /// alive) and on the connection the case's requests used (the server
    /// did not drop a connection it had left open for more requests: one it
    /// closes must say `Connection: close`, or the client's next request on
    /// it fails).
    pub async fn healthz(&mut self) -> Result<(), String> {
        let url = format!("{}/healthz", self.app.address);
        // First on the case's connection, at once, as a client's next request would be.
        let reused = self.http.get(&url).send().await;
        let fresh = self
            .probe
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("/healthz did not answer after the case: {e:?}"))?;
        if fresh.status() != 200 {
            return Err(format!("/healthz answered {}", fresh.status()));
        }
        let reused = reused.map_err(|e| {
            format!(
                "the server is alive, but the next request on the case's keep-alive connection \
                 failed: the server closed that connection without `Connection: close` ({e:?})"
            )
        })?;
        if reused.status() != 200 {
            return Err(format!("/healthz answered {}", reused.status()));
        }
        Ok(())
    }

    /// Sends a request; no answer in time, or an answer that carries a
    /// secret, is a violation.
    async fn send(&mut self, request: reqwest::RequestBuilder) -> Result<Reply, String> {
        self.send_with(request, false).await
    }

    /// `send`, over a connection of its own when `own_connection`, which is
    /// then checked to stay usable (see `raw_exchange`).
    async fn send_with(
        &mut self,
        request: reqwest::RequestBuilder,
        own_connection: bool,
    ) -> Result<Reply, String> {
        self.requests += 1;
        let request = request
            .build()
            .map_err(|e| format!("the fuzzer built a bad request: {e}"))?;
        let sent = format!(
            "{} {} {}",
            request.method(),
            clip(request.url().as_str(), 2000),
            request
                .body()
                .and_then(reqwest::Body::as_bytes)
                .map(|b| clip(&String::from_utf8_lossy(b), 2000))
                .unwrap_or_default()
        );
        let reply = if own_connection {
            tokio::time::timeout(REQUEST_TIMEOUT, raw_exchange(&request))
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {REQUEST_TIMEOUT:?}")))
                .map_err(|e| format!("{e}\n  request: {sent}"))?
        } else {
            let response = self.http.execute(request).await.map_err(|e| {
                format!("no answer within {REQUEST_TIMEOUT:?}: {e:?}\n  request: {sent}")
            })?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response
                .bytes()
                .await
                .map_err(|e| format!("the body did not arrive: {e}\n  request: {sent}"))?
                .to_vec();
            Reply {
                status,
                headers,
                body,
            }
        };
        checks::no_secrets(&reply, &self.secrets).map_err(|e| described(e, &sent, &reply))?;
        Ok(reply)
    }

    // -----------------------------------------------------------------------
    // Running a case.

    pub async fn run(&mut self, case: &Case, n: u64) -> Result<Outcome, String> {
        match &case.kind {
            Kind::Post {
                body,
                content_type,
                accept,
            } => self.post(case, n, body, *content_type, *accept).await,
            Kind::Get {
                doc,
                accept,
                snake_case_name,
                string_variables,
            } => {
                self.get(case, n, doc, *accept, *snake_case_name, *string_variables)
                    .await
            }
            Kind::GetRaw(query) => {
                let query = self.fill(query, case.who);
                let url = format!("{}?{query}", self.app.graphql_url());
                let request = self.http.get(url).headers(self.headers(case, n, 0));
                let reply = self.send(request).await?;
                graphql_outcome(&reply).map_err(|e| described(e, "GET ?{query}", &reply))
            }
            Kind::Apq {
                doc,
                mode,
                register_with_get,
                use_with_get,
            } => {
                self.apq(case, n, doc, mode, *register_with_get, *use_with_get)
                    .await
            }
            Kind::Rest(call, place) => self.rest(case, n, call, *place).await,
        }
    }
}

/// Query strings past this cannot be sent (`http::Uri` takes at most 64 KiB):
/// longer ones are cut, mid-document.
const MAX_QUERY_STRING: usize = 60_000;

fn cut(query: String) -> (String, bool) {
    if query.len() <= MAX_QUERY_STRING {
        return (query, false);
    }
    let bytes = query.as_bytes();
    let mut end = MAX_QUERY_STRING;
    while bytes[end - 1] == b'%' || bytes[end - 2] == b'%' {
        end -= 1;
    }
    (query[..end].to_owned(), true)
}

fn described(violation: String, request: &str, reply: &Reply) -> String {
    format!("{violation}\n  request: {request}\n  reply: {reply:?}")
}
