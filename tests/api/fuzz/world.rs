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

use std::time::Duration;

use base64::Engine;
use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::checks::{self, Class, Reply};
use super::documents::{Doc, Expect, Ids, In, MAX_BODY_BYTES, Values, pad_unit};
use super::requests::{
    Accept, ApqMode, Case, ContentType, CredentialPlace, Envelope, Kind, PathId, PostBody, RawBody,
    RestBody, RestCall, Role, Who,
};
use super::values::{V, clip, mark};
use crate::harness::{ADMIN_PASSWORD, ADMIN_USERNAME, TestApp};

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

    async fn hash_of(&self, id: &str) -> String {
        self.db
            .query_opt(
                "SELECT password_hash FROM agents WHERE id::text = $1",
                &[&id],
            )
            .await
            .unwrap()
            .map(|row| row.get(0))
            .unwrap_or_default()
    }

    async fn login(&mut self, username: &str, password: &str) -> Principal {
        let token = self.app.token(username, password).await;
        let me = self
            .app
            .gql(Some(&token), "{ me { agent { id } } }", json!({}))
            .await;
        let id = me["data"]["me"]["agent"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("me failed: {me}"))
            .to_owned();
        self.secrets.push(token.clone());
        Principal {
            hash: self.hash_of(&id).await,
            id,
            username: username.to_owned(),
            token,
        }
    }

    async fn new_super_admin(&mut self) {
        self.seq += 1;
        let username = format!("fzsuper{}", self.seq);
        // Another agent of the platform with the super admin bit, and the
        // bootstrap admin's password.
        self.app.seed_agent(ADMIN_USERNAME, &username, 1).await;
        self.super_admin = self.login(&username, ADMIN_PASSWORD).await;
    }

    async fn new_customer(&mut self) {
        self.seq += 1;
        let username = format!("fzcust{}", self.seq);
        let password = self.customer_password.clone();
        self.customer = self
            .app
            .create_customer_ok(&self.maintenance, &username, &password)
            .await;
        self.customer_admin = self.login(&username, &password).await;
        let agent = format!("fzagent{}", self.seq);
        self.app.seed_agent(&username, &agent, 16).await;
        self.agent = self.login(&agent, &password).await;
        self.new_key().await;
    }

    async fn new_key(&mut self) {
        let key = self
            .app
            .create_access_key_ok(&self.customer_admin.token, json!({ "name": "fuzz" }))
            .await;
        self.secrets.push(key.1.clone());
        self.key = key;
    }

    async fn new_other_customer(&mut self) {
        self.seq += 1;
        let username = format!("fzother{}", self.seq);
        let password = self.customer_password.clone();
        self.other = self
            .app
            .create_customer_ok(&self.maintenance, &username, &password)
            .await;
        let body = self
            .app
            .gql(
                Some(&self.maintenance),
                "query($id: UUID!) { customer(id: $id) { guestAgent { id } } }",
                json!({ "id": self.other }),
            )
            .await;
        self.other_agent = body["data"]["customer"]["guestAgent"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("customer failed: {body}"))
            .to_owned();
    }

    /// Sets a known password again and logs in afresh.
    async fn reset(&mut self, principal: &Principal, password: &str) -> Principal {
        let body = self
            .app
            .set_agent_password(&self.maintenance, &principal.id, password)
            .await;
        assert!(
            body["data"]["setAgentPassword"].is_object(),
            "reset a password: {body}"
        );
        let username = principal.username.clone();
        self.login(&username, password).await
    }

    async fn alive(&mut self, token: &str) -> bool {
        let body = self
            .app
            .gql(Some(token), "{ me { permissions } }", json!({}))
            .await;
        body["data"]["me"].is_object()
    }

    async fn intact(&mut self, principal: &Principal) -> bool {
        let token = principal.token.clone();
        self.alive(&token).await && self.hash_of(&principal.id).await == principal.hash
    }

    async fn deleted(&self, customer: &str) -> bool {
        self.db
            .query_one(
                "SELECT tm_delete IS NOT NULL FROM customers WHERE id::text = $1",
                &[&customer],
            )
            .await
            .unwrap()
            .get(0)
    }

    /// Rebuilds whatever a case may have broken.
    pub async fn heal(&mut self) {
        if self.deleted(&self.customer.clone()).await {
            self.new_customer().await;
            self.rebuilt += 1;
        } else {
            let password = self.customer_password.clone();
            for agent in [false, true] {
                let principal = if agent {
                    self.agent.clone()
                } else {
                    self.customer_admin.clone()
                };
                if !self.intact(&principal).await {
                    let fresh = self.reset(&principal, &password).await;
                    if agent {
                        self.agent = fresh;
                    } else {
                        self.customer_admin = fresh;
                    }
                    self.rebuilt += 1;
                }
            }
            let key = self.key.1.clone();
            if !self.alive(&key).await {
                self.new_key().await;
                self.rebuilt += 1;
            }
        }
        let super_admin = self.super_admin.clone();
        if !self.intact(&super_admin).await {
            self.new_super_admin().await;
            self.rebuilt += 1;
        }
        if self.deleted(&self.other.clone()).await {
            self.new_other_customer().await;
            self.rebuilt += 1;
        }
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

    // -----------------------------------------------------------------------
    // Placeholders and credentials.

    fn resolve(&mut self, name: &str, who: Who) -> String {
        match name {
            "cust" => self.customer.clone(),
            "other" => self.other.clone(),
            "platform" => self.platform.clone(),
            "cadmin" => self.customer_admin.id.clone(),
            "agent" => self.agent.id.clone(),
            "sadmin" => self.super_admin.id.clone(),
            "otheragent" => self.other_agent.clone(),
            "key" => self.key.0.clone(),
            "deadkey" => self.dead_key.0.clone(),
            "pw" if who.role == Role::SuperAdmin => ADMIN_PASSWORD.to_owned(),
            "pw" | "cpw" => self.customer_password.clone(),
            "apw" => ADMIN_PASSWORD.to_owned(),
            "newpw" => self.new_password.clone(),
            "uname" => match who.role {
                Role::SuperAdmin => self.super_admin.username.clone(),
                Role::Agent => self.agent.username.clone(),
                _ => self.customer_admin.username.clone(),
            },
            "cuname" => self.customer_admin.username.clone(),
            "fresh" => {
                self.seq += 1;
                format!("fz{}", self.seq)
            }
            // A lone surrogate escape: only meaningful in JSON text.
            "lone" => "\\ud800".to_owned(),
            other => mark(other),
        }
    }

    /// `text` with its placeholders filled in (`⟪pad⟫` is left for `pad`).
    fn fill(&mut self, text: &str, who: Who) -> String {
        const OPEN: char = '\u{27EA}';
        const CLOSE: char = '\u{27EB}';
        if !text.contains(OPEN) {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find(OPEN) {
            out.push_str(&rest[..start]);
            let after = &rest[start + OPEN.len_utf8()..];
            match after.find(CLOSE) {
                Some(end) if end <= 12 => {
                    let value = self.resolve(&after[..end], who);
                    out.push_str(&value);
                    rest = &after[end + CLOSE.len_utf8()..];
                }
                _ => {
                    out.push(OPEN);
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }

    fn token(&self, role: Role) -> Option<String> {
        Some(match role {
            Role::SuperAdmin => self.super_admin.token.clone(),
            Role::CustomerAdmin => self.customer_admin.token.clone(),
            Role::Agent => self.agent.token.clone(),
            Role::AccessKey => self.key.1.clone(),
            Role::Revoked => self.revoked.clone(),
            Role::DeadKey => self.dead_key.1.clone(),
            Role::Forged => self.forged(0),
            Role::Nobody | Role::Malformed => return None,
        })
    }

    /// Bearer tokens the server never issued, some close to real ones.
    fn forged(&self, variant: u8) -> String {
        let b64 = |text: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text);
        let real = &self.super_admin.token;
        match variant % 6 {
            0 => format!(
                "{}.{}.",
                b64(r#"{"alg":"none","typ":"JWT"}"#),
                b64(&format!(
                    r#"{{"sub":"{}","iat":0,"exp":4102444800,"jti":"{}"}}"#,
                    self.super_admin.id, self.super_admin.id
                ))
            ),
            1 => format!("vb_{}", "A".repeat(40 + usize::from(variant % 7))),
            2 => "x".repeat(8_000),
            3 => {
                let mut forged = real.clone();
                let last = forged.pop().unwrap_or('A');
                forged.push(if last == 'A' { 'B' } else { 'A' });
                forged
            }
            4 => {
                let parts: Vec<&str> = real.split('.').collect();
                let claims = format!(
                    r#"{{"sub":"{}","iat":0,"exp":4102444800,"jti":"00000000-0000-0000-0000-000000000000"}}"#,
                    self.super_admin.id
                );
                format!(
                    "{}.{}.{}",
                    parts.first().unwrap_or(&""),
                    b64(&claims),
                    parts.last().unwrap_or(&"")
                )
            }
            _ => "eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN_a9IV7pAx_Zmeo".into(),
        }
    }

    fn authorization(&self, who: Who) -> Option<HeaderValue> {
        let v = who.variant;
        let real = &self.super_admin.token;
        let text = match who.role {
            Role::Nobody => return None,
            Role::Malformed => match v % 9 {
                0 => "Basic YWRtaW46Ym9vdHN0cmFw".to_owned(),
                1 => "Bearer".into(),
                2 => "Bearer    ".into(),
                3 => "bearer".into(),
                4 => format!("Token {real}"),
                5 => return HeaderValue::from_bytes(b"Bearer \xff\xfe\xfd").ok(),
                6 => format!("Bearer {real} extra"),
                7 => format!("Bearer {real},Bearer {real}"),
                _ => real.clone(),
            },
            Role::Forged => format!("Bearer {}", self.forged(v)),
            role => {
                let token = self.token(role)?;
                let scheme = match v % 8 {
                    0 => "bearer",
                    1 => "BEARER",
                    _ => "Bearer",
                };
                let gap = if v % 11 == 0 { "   " } else { " " };
                let tail = if v % 13 == 0 { " " } else { "" };
                format!("{scheme}{gap}{token}{tail}")
            }
        };
        HeaderValue::from_str(&text).ok()
    }

    fn headers(&self, case: &Case, n: u64, step: usize) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(value) = self.authorization(case.who) {
            headers.insert(AUTHORIZATION, value);
        }
        if let Some(value) = case
            .forwarded_for
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            headers.insert("x-forwarded-for", value);
        }
        let id = case
            .request_id
            .clone()
            .unwrap_or_else(|| format!("fuzz-{n}-{step}"));
        if let Ok(value) = HeaderValue::from_str(&id) {
            headers.insert("x-request-id", value);
        }
        headers
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

    /// The JSON object of one operation, placeholders not yet filled.
    fn operation_object(doc: &Doc, envelope: Envelope) -> Value {
        let mut object = Map::new();
        object.insert(
            "query".into(),
            if envelope == Envelope::NullQuery {
                Value::Null
            } else {
                doc.text.clone().into()
            },
        );
        let variables = doc.variables.clone();
        match envelope {
            Envelope::NoVariables => {}
            Envelope::NullMembers => {
                object.insert("variables".into(), Value::Null);
                object.insert("operationName".into(), Value::Null);
                object.insert("extensions".into(), Value::Null);
            }
            Envelope::StringVariables => {
                let mut variables = variables.unwrap_or_else(|| json!({}));
                variables["password"] = mark("pw").into();
                object.insert("variables".into(), variables.to_string().into());
            }
            Envelope::ArrayVariables => {
                object.insert("variables".into(), json!([1, mark("pw")]));
            }
            Envelope::LoneSurrogate => {
                let mut variables = variables.unwrap_or_else(|| json!({}));
                variables["lone"] = format!("a{}b", mark("lone")).into();
                object.insert("variables".into(), variables);
            }
            _ => {
                if let Some(variables) = variables {
                    object.insert("variables".into(), variables);
                }
            }
        }
        match envelope {
            Envelope::NonStringOperationName => {
                object.insert("operationName".into(), json!([doc.operation_name]));
            }
            Envelope::NullMembers => {}
            _ => {
                if let Some(name) = &doc.operation_name {
                    object.insert("operationName".into(), name.clone().into());
                }
            }
        }
        if envelope == Envelope::ExtraMembers {
            object.insert("extensions".into(), json!({ "tracing": true, "x": [1] }));
            object.insert("id".into(), "1".into());
            object.insert("Query".into(), "{ __typename }".into());
        }
        Value::Object(object)
    }

    /// Fills `⟪pad⟫` in a JSON body so that it is MAX_BODY_BYTES + `delta` long.
    fn pad(text: String, doc: &Doc) -> String {
        let marker = mark("pad");
        let Some(delta) = doc.pad else {
            return text.replace(&marker, "[{(x");
        };
        let target = (MAX_BODY_BYTES as i64 + delta).max(0) as usize;
        let need = target.saturating_sub(text.len() - marker.len());
        let unit = serde_json::to_string(pad_unit(&doc.text)).unwrap();
        let unit = &unit[1..unit.len() - 1];
        let mut filler = unit.repeat(need / unit.len());
        filler.push_str(&"x".repeat(need - filler.len()));
        text.replacen(&marker, &filler, 1)
    }

    fn raw_body(raw: &RawBody) -> Vec<u8> {
        match raw {
            RawBody::Empty => Vec::new(),
            RawBody::Text(text) => text.clone().into_bytes(),
            RawBody::DeepArray(n) => format!("{}{}", "[".repeat(*n), "]".repeat(*n)).into_bytes(),
            RawBody::DuplicateKeys => {
                br#"{"query": "{ me { permissions } }", "query": "{ __typename }"}"#.to_vec()
            }
            RawBody::Bom => "\u{FEFF}{\"query\": \"{ __typename }\"}"
                .as_bytes()
                .to_vec(),
            RawBody::TrailingGarbage => br#"{"query": "{ __typename }"} {"#.to_vec(),
            RawBody::NonUtf8 => {
                b"{\"query\": \"{ customers(after: \\\"\xff\xfe\\\") { totalCount } }\"}".to_vec()
            }
            RawBody::Scalar(text) => text.as_bytes().to_vec(),
        }
    }

    async fn post(
        &mut self,
        case: &Case,
        n: u64,
        body: &PostBody,
        content_type: ContentType,
        accept: Accept,
    ) -> Result<Outcome, String> {
        let (bytes, docs): (Vec<u8>, Vec<&Doc>) = match body {
            PostBody::Single(doc, envelope) => {
                let text = serde_json::to_string(&Self::operation_object(doc, *envelope)).unwrap();
                let text = Self::pad(self.fill(&text, case.who), doc);
                (text.into_bytes(), vec![doc])
            }
            PostBody::Batch(docs) => {
                let batch: Vec<Value> = docs
                    .iter()
                    .map(|doc| Self::operation_object(doc, Envelope::Standard))
                    .collect();
                let text = serde_json::to_string(&batch).unwrap();
                let text = self.fill(&text, case.who).replace(&mark("pad"), "[{(x");
                (text.into_bytes(), docs.iter().collect())
            }
            PostBody::Raw(raw) => (Self::raw_body(raw), Vec::new()),
        };
        let mut request = self
            .http
            .post(self.app.graphql_url())
            .headers(self.headers(case, n, 0));
        if let Some(value) = content_type.value() {
            request = request.header(CONTENT_TYPE, value);
        }
        if let Some(value) = accept.value() {
            request = request.header(ACCEPT, value);
        }
        let size = bytes.len();
        // Some requests, and all near or over the size limit, on a
        // connection of their own that must stay usable afterwards.
        let own_connection = size > MAX_BODY_BYTES - 8192 || n % 8 == 0;
        let reply = self
            .send_with(request.body(bytes.clone()), own_connection)
            .await?;
        let describe = || {
            format!(
                "POST /graphql ({} bytes, {:?}, {:?}) {}",
                size,
                content_type,
                accept,
                clip(&String::from_utf8_lossy(&bytes), 3000)
            )
        };
        (|| {
            let outcome = graphql_outcome(&reply)?;
            if size > MAX_BODY_BYTES {
                if reply.status != 413 {
                    return Err(format!(
                        "a body of {size} bytes (over {MAX_BODY_BYTES}) was not refused with 413"
                    ));
                }
                return Ok(outcome);
            }
            if reply.status == 413 {
                return Err(format!("a body of {size} bytes was refused as too large"));
            }
            if !content_type.is_json() {
                if reply.status != 415 {
                    return Err(
                        "a body that is not application/json was not refused with 415".into(),
                    );
                }
                return Ok(outcome);
            }
            let objects = checks::graphql(&reply)?;
            match body {
                PostBody::Single(doc, envelope) => {
                    let object = &objects[0];
                    status_fits(&reply, object, accept)?;
                    if envelope.is_standard() {
                        checks::expectation(object, &doc.expect)?;
                    }
                }
                PostBody::Batch(_) if docs.len() > MAX_BATCH_SIZE => {
                    if reply.status != 400 || !checks::limits(&objects[0]).contains(&"BATCH".into())
                    {
                        return Err(format!(
                            "a batch of {} was not refused with BATCH",
                            docs.len()
                        ));
                    }
                }
                PostBody::Batch(_) => {
                    if objects.len() != docs.len() {
                        return Err(format!(
                            "a batch of {} answered with {} responses",
                            docs.len(),
                            objects.len()
                        ));
                    }
                    for (object, doc) in objects.iter().zip(&docs) {
                        checks::expectation(object, &doc.expect)?;
                    }
                }
                PostBody::Raw(_) => {}
            }
            Ok(outcome)
        })()
        .map_err(|e| described(e, &describe(), &reply))
    }

    /// The query string of a GraphQL request.
    fn query_string(&mut self, who: Who, pairs: Vec<(&str, String)>) -> String {
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in pairs {
            let value = self.fill(&value, who).replace(&mark("pad"), "[{(x");
            serializer.append_pair(key, &value);
        }
        serializer.finish()
    }

    async fn get(
        &mut self,
        case: &Case,
        n: u64,
        doc: &Doc,
        accept: Accept,
        snake_case_name: bool,
        string_variables: bool,
    ) -> Result<Outcome, String> {
        let mut pairs = vec![("query", doc.text.clone())];
        if string_variables {
            let mut variables = doc.variables.clone().unwrap_or_else(|| json!({}));
            variables["password"] = mark("pw").into();
            pairs.push(("variables", Value::from(variables.to_string()).to_string()));
        } else if let Some(variables) = &doc.variables {
            pairs.push(("variables", variables.to_string()));
        }
        if let Some(name) = &doc.operation_name {
            let key = if snake_case_name {
                "operation_name"
            } else {
                "operationName"
            };
            pairs.push((key, name.clone()));
        }
        let (query, cut) = cut(self.query_string(case.who, pairs));
        let mut request = self
            .http
            .get(format!("{}?{query}", self.app.graphql_url()))
            .headers(self.headers(case, n, 0));
        if let Some(value) = accept.value() {
            request = request.header(ACCEPT, value);
        }
        let reply = self.send(request).await?;
        (|| {
            let outcome = graphql_outcome(&reply)?;
            let objects = checks::graphql(&reply)?;
            let object = &objects[0];
            status_fits(&reply, object, accept)?;
            if !cut && !string_variables {
                checks::expectation(object, &doc.expect)?;
            }
            if doc.mutation && !cut {
                get_refuses_mutation(&reply, object)?;
            }
            Ok(outcome)
        })()
        .map_err(|e| described(e, &format!("GET /graphql?{}", clip(&query, 3000)), &reply))
    }

    /// One APQ request: with the document or the hash alone, POST or GET.
    async fn apq_request(
        &mut self,
        case: &Case,
        n: u64,
        step: usize,
        object: Map<String, Value>,
        get: bool,
    ) -> Result<(Reply, String, bool), String> {
        let headers = self.headers(case, n, step);
        if get {
            let pairs: Vec<(&str, String)> = object
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) if k != "variables" && k != "extensions" => s.clone(),
                        other => other.to_string(),
                    };
                    (k.as_str(), v)
                })
                .collect();
            // A cut query string loses the hash: it is then a plain GET.
            let (query, cut) = cut(self.query_string(case.who, pairs));
            let request = self
                .http
                .get(format!("{}?{query}", self.app.graphql_url()))
                .headers(headers);
            let reply = self.send(request).await?;
            Ok((reply, format!("GET /graphql?{}", clip(&query, 2000)), cut))
        } else {
            let text = serde_json::to_string(&object).unwrap();
            let text = self.fill(&text, case.who);
            let request = self
                .http
                .post(self.app.graphql_url())
                .headers(headers)
                .header(CONTENT_TYPE, "application/json")
                .body(text.clone());
            let reply = self.send(request).await?;
            Ok((reply, format!("POST /graphql {}", clip(&text, 2000)), false))
        }
    }

    async fn apq(
        &mut self,
        case: &Case,
        n: u64,
        doc: &Doc,
        mode: &ApqMode,
        register_with_get: bool,
        use_with_get: bool,
    ) -> Result<Outcome, String> {
        // The hash is of the document as sent, placeholders filled in.
        let text = self.fill(&doc.text, case.who).replace(&mark("pad"), "[{(x");
        let hash = |text: &str| format!("{:x}", Sha256::digest(text.as_bytes()));
        let mut object = Map::new();
        if let Some(variables) = &doc.variables {
            object.insert("variables".into(), variables.clone());
        }
        if let Some(name) = &doc.operation_name {
            object.insert("operationName".into(), name.clone().into());
        }
        let persisted = |version: Value, hash: Value| json!({ "persistedQuery": { "version": version, "sha256Hash": hash } });
        let (expect, get) = match mode {
            ApqMode::RegisterThenUse => {
                let mut first = object.clone();
                first.insert("query".into(), text.clone().into());
                first.insert("extensions".into(), persisted(1.into(), hash(&text).into()));
                let (reply, request, cut) = self
                    .apq_request(case, n, 0, first, register_with_get)
                    .await?;
                let registered = (|| {
                    let objects = checks::graphql(&reply)?;
                    if !cut {
                        checks::expectation(&objects[0], &doc.expect)?;
                    }
                    if register_with_get && doc.mutation && !cut {
                        get_refuses_mutation(&reply, &objects[0])?;
                    }
                    Ok(!checks::refused(&objects[0]))
                })()
                .map_err(|e| described(e, &request, &reply))?;
                let first_outcome =
                    graphql_outcome(&reply).map_err(|e| described(e, &request, &reply))?;
                object.insert("extensions".into(), persisted(1.into(), hash(&text).into()));
                let (reply, request, _) =
                    self.apq_request(case, n, 1, object, use_with_get).await?;
                let outcome = (|| {
                    let outcome = graphql_outcome(&reply)?;
                    let objects = checks::graphql(&reply)?;
                    let codes = checks::codes(&objects[0]);
                    if registered && codes.contains(&"PERSISTED_QUERY_NOT_FOUND") {
                        return Err(
                            "a document that executed with its hash was not kept under it".into(),
                        );
                    }
                    if use_with_get && doc.mutation {
                        get_refuses_mutation(&reply, &objects[0])?;
                    }
                    Ok(outcome)
                })()
                .map_err(|e| described(e, &request, &reply))?;
                return Ok(if first_outcome.class > outcome.class {
                    first_outcome
                } else {
                    outcome
                });
            }
            ApqMode::WrongHash => {
                object.insert("query".into(), text.clone().into());
                let wrong = hash(&format!("{text} "));
                object.insert("extensions".into(), persisted(1.into(), wrong.into()));
                (Expect::RefusedWith("BAD_USER_INPUT"), false)
            }
            ApqMode::BadVersion(k) => {
                let version = [
                    json!(2),
                    json!(0),
                    json!(-1),
                    json!("1"),
                    Value::Null,
                    json!(1.5),
                ][usize::from(*k) % 6]
                    .clone();
                object.insert("query".into(), text.clone().into());
                object.insert("extensions".into(), persisted(version, hash(&text).into()));
                (Expect::RefusedWith("BAD_USER_INPUT"), false)
            }
            ApqMode::UnknownHash(seed) => {
                object.insert(
                    "extensions".into(),
                    persisted(1.into(), hash(&format!("unknown {seed}")).into()),
                );
                (
                    Expect::RefusedWith("PERSISTED_QUERY_NOT_FOUND"),
                    use_with_get,
                )
            }
            ApqMode::Malformed(k) => {
                let malformed = [
                    json!("x"),
                    json!({}),
                    json!({ "sha256Hash": 5, "version": 1 }),
                    json!([]),
                    Value::Null,
                ][usize::from(*k) % 5]
                    .clone();
                object.insert("query".into(), text.clone().into());
                object.insert("extensions".into(), json!({ "persistedQuery": malformed }));
                (Expect::RefusedWith("BAD_USER_INPUT"), false)
            }
        };
        let (reply, request, _) = self.apq_request(case, n, 0, object, get).await?;
        (|| {
            let outcome = graphql_outcome(&reply)?;
            let objects = checks::graphql(&reply)?;
            checks::expectation(&objects[0], &expect)?;
            Ok(outcome)
        })()
        .map_err(|e| described(e, &request, &reply))
    }

    fn rest_body(&mut self, body: &RestBody, login: bool, who: Who) -> Vec<u8> {
        let text = match body {
            RestBody::Raw(text) => text.clone(),
            RestBody::Fields(seed, pool) => {
                let mut values = Values::new(*seed, pool);
                let mut fields: Vec<(String, V)> = Vec::new();
                let mut field = |values: &mut Values<'_>, name: &str, ty: In, required: bool| {
                    let present = if required {
                        !values.rng.one_in(15)
                    } else {
                        values.rng.one_in(2)
                    };
                    if present {
                        let value = values.value(ty);
                        fields.push((name.to_owned(), value));
                    }
                };
                if login {
                    field(&mut values, "username", In::LoginName, true);
                    field(&mut values, "password", In::Password, true);
                } else {
                    field(&mut values, "username", In::Username, true);
                    field(&mut values, "password", In::NewPassword, true);
                    for name in ["name", "detail", "line_secret", "line_token"] {
                        field(&mut values, name, In::Text, false);
                    }
                    field(&mut values, "webhook_uri", In::Uri, false);
                    field(&mut values, "permission_ids", In::IdList, false);
                    if values.rng.one_in(2) {
                        let method = if values.rng.one_in(4) {
                            V::str(values.text())
                        } else {
                            V::str(
                                *values
                                    .rng
                                    .pick(&["GET", "POST", "PUT", "DELETE", "", "PATCH", "post"]),
                            )
                        };
                        fields.push(("webhook_method".into(), method));
                    }
                    if values.rng.one_in(4) {
                        let id = values.id(Ids::Customer);
                        fields.push(("id".into(), id));
                    }
                }
                if values.rng.one_in(10) {
                    fields.push(("unknown".into(), V::Int(1)));
                }
                V::Obj(fields).json().to_string()
            }
            RestBody::Huge(delta) => {
                let head = if login {
                    format!("{{\"username\": \"{}\", \"password\": \"", mark("uname"))
                } else {
                    format!(
                        "{{\"username\": \"{}\", \"password\": \"{}\", \"detail\": \"",
                        mark("fresh"),
                        mark("newpw")
                    )
                };
                let head = self.fill(&head, who);
                let tail = "\"}";
                let target = (MAX_BODY_BYTES as i64 + delta).max(0) as usize;
                let need = target.saturating_sub(head.len() + tail.len());
                return format!("{head}{}{tail}", "x".repeat(need)).into_bytes();
            }
        };
        self.fill(&text, who).into_bytes()
    }

    async fn rest(
        &mut self,
        case: &Case,
        n: u64,
        call: &RestCall,
        place: CredentialPlace,
    ) -> Result<Outcome, String> {
        let who = case.who;
        let mut headers = self.headers(case, n, 0);
        let mut parameters: Vec<(String, String)> = Vec::new();
        let token = self.token(who.role);
        match (place, &token) {
            (CredentialPlace::TokenParameter, Some(token)) => {
                headers.remove(AUTHORIZATION);
                parameters.push(("token".into(), token.clone()));
            }
            (CredentialPlace::AccessKeyParameter, Some(token)) => {
                headers.remove(AUTHORIZATION);
                parameters.push(("accesskey".into(), token.clone()));
            }
            (CredentialPlace::HeaderAndSameToken, Some(token)) => {
                parameters.push(("token".into(), token.clone()));
            }
            (CredentialPlace::Conflicting, _) => {
                parameters.push(("token".into(), self.revoked.clone()));
            }
            _ => {}
        }
        let id = |world: &mut Self, id: &PathId| match id {
            PathId::Mark(name) => world.fill(&mark(name), who),
            PathId::Raw(raw) => url::form_urlencoded::byte_serialize(raw.as_bytes())
                .collect::<String>()
                .replace('+', "%20"),
            PathId::Verbatim(text) => (*text).to_owned(),
        };
        let mut body = None;
        let (method, path, rest_path) = match call {
            RestCall::Login(b) => {
                body = Some(self.rest_body(b, true, who));
                (Method::POST, "/auth/login".to_owned(), true)
            }
            RestCall::List(pairs) => {
                for (k, v) in pairs {
                    let v = self.fill(v, who);
                    parameters.push((k.clone(), v));
                }
                (Method::GET, "/v1.0/customers".to_owned(), true)
            }
            RestCall::Get(i) => (
                Method::GET,
                format!("/v1.0/customers/{}", id(self, i)),
                true,
            ),
            RestCall::Create(b) => {
                body = Some(self.rest_body(b, false, who));
                (Method::POST, "/v1.0/customers".to_owned(), true)
            }
            RestCall::Delete(i) => (
                Method::DELETE,
                format!("/v1.0/customers/{}", id(self, i)),
                true,
            ),
            RestCall::Put(i) => (
                Method::PUT,
                format!("/v1.0/customers/{}", id(self, i)),
                true,
            ),
            RestCall::Path(method, path) => (
                Method::from_bytes(method.as_bytes()).unwrap(),
                (*path).to_owned(),
                path.starts_with("/v1.0") || path.starts_with("/auth/"),
            ),
            RestCall::Preflight(origin) => {
                if let Ok(value) = HeaderValue::from_str(origin) {
                    headers.insert("origin", value);
                }
                headers.insert(
                    "access-control-request-method",
                    HeaderValue::from_static("POST"),
                );
                headers.insert(
                    "access-control-request-headers",
                    HeaderValue::from_static("authorization,content-type,x-request-id"),
                );
                (Method::OPTIONS, "/graphql".to_owned(), false)
            }
        };
        let mut url = format!("{}{path}", self.app.address);
        if !parameters.is_empty() {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(parameters)
                .finish();
            url = format!("{url}?{query}");
        }
        let (url, _) = cut(url);
        // As the client normalises it (`/v1.0/%2e%2e/graphql` is `/graphql`).
        let rest_path = rest_path
            && reqwest::Url::parse(&url)
                .is_ok_and(|u| u.path().starts_with("/v1.0") || u.path().starts_with("/auth/"));
        let head = method == Method::HEAD;
        let mut request = self.http.request(method.clone(), &url).headers(headers);
        let size = body.as_ref().map_or(0, Vec::len);
        if let Some(body) = &body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let own_connection = size > MAX_BODY_BYTES - 8192 || (body.is_some() && n % 8 == 0);
        let reply = self.send_with(request, own_connection).await?;
        let describe = || {
            format!(
                "{method} {} {}",
                clip(&url, 2000),
                body.as_ref()
                    .map(|b| clip(&String::from_utf8_lossy(b), 2000))
                    .unwrap_or_default()
            )
        };
        (|| {
            if size > MAX_BODY_BYTES && reply.status != 413 {
                return Err(format!("a body of {size} bytes was not refused with 413"));
            }
            if size <= MAX_BODY_BYTES && reply.status == 413 {
                return Err(format!("a body of {size} bytes was refused as too large"));
            }
            if !rest_path || head {
                if reply.status >= 500 {
                    return Err(format!("status {}", reply.status));
                }
                return Ok(Outcome {
                    class: Class::Transport,
                    limits: Vec::new(),
                    null_data: 0,
                });
            }
            if path.ends_with("openapi.json") {
                // The description of the API: it names the password fields.
                return Ok(Outcome {
                    class: Class::Transport,
                    limits: Vec::new(),
                    null_data: 0,
                });
            }
            let class = checks::rest(&reply)?;
            Ok(Outcome {
                class,
                limits: if class == Class::Limit {
                    vec!["BODY_SIZE".into()]
                } else {
                    Vec::new()
                },
                null_data: 0,
            })
        })()
        .map_err(|e| described(e, &describe(), &reply))
    }
}

/// Reads one HTTP/1.1 response (framed by `Content-Length`, chunked, or
/// by the end of the connection).
async fn read_response(stream: &mut tokio::net::TcpStream) -> Result<Reply, String> {
    use tokio::io::AsyncReadExt;
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading the response: {e}"))?;
        if n == 0 {
            return Err("the connection was closed before a response".into());
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("a malformed status line: {head:?}"))?;
    let mut headers = HeaderMap::new();
    for line in lines.filter(|l| !l.is_empty()) {
        if let Some((name, value)) = line.split_once(':')
            && let (Ok(name), Ok(value)) = (
                reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()),
                HeaderValue::from_str(value.trim()),
            )
        {
            headers.append(name, value);
        }
    }
    let mut body = buffer[head_end..].to_vec();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(length) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        while body.len() < length {
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|e| format!("reading the body: {e}"))?;
            if n == 0 {
                return Err("the connection was closed mid-body".into());
            }
            body.extend_from_slice(&chunk[..n]);
        }
        body.truncate(length);
    } else if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut raw = body;
        let mut decoded = Vec::new();
        loop {
            if let Some(at) = raw.windows(2).position(|w| w == b"\r\n") {
                let size = usize::from_str_radix(
                    String::from_utf8_lossy(&raw[..at])
                        .split(';')
                        .next()
                        .unwrap_or("")
                        .trim(),
                    16,
                )
                .map_err(|_| "a malformed chunk size".to_owned())?;
                if raw.len() >= at + 2 + size + 2 {
                    if size == 0 {
                        break;
                    }
                    decoded.extend_from_slice(&raw[at + 2..at + 2 + size]);
                    raw.drain(..at + 2 + size + 2);
                    continue;
                }
            }
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|e| format!("reading a chunk: {e}"))?;
            if n == 0 {
                return Err("the connection was closed mid-body".into());
            }
            raw.extend_from_slice(&chunk[..n]);
        }
        body = decoded;
    } else if status != 204 && status != 304 {
        stream
            .read_to_end(&mut body)
            .await
            .map_err(|e| format!("reading the body: {e}"))?;
    }
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// Sends `request` over a new connection, then `GET /healthz` on the same
/// connection: unless the reply said `Connection: close`, the connection
/// must still serve it. (A server that closes a connection it did not
/// announce closing makes the client's next request on it fail.)
async fn raw_exchange(request: &reqwest::Request) -> Result<Reply, String> {
    use tokio::io::AsyncWriteExt;
    let url = request.url();
    let host = format!(
        "{}:{}",
        url.host_str().unwrap_or("127.0.0.1"),
        url.port_or_known_default().unwrap_or(80)
    );
    let target = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    let body = request
        .body()
        .and_then(reqwest::Body::as_bytes)
        .unwrap_or_default();
    let mut head =
        format!("{} {target} HTTP/1.1\r\nhost: {host}\r\n", request.method()).into_bytes();
    for (name, value) in request.headers() {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    let mut stream = tokio::net::TcpStream::connect(&host)
        .await
        .map_err(|e| format!("connecting: {e}"))?;
    stream
        .write_all(&head)
        .await
        .map_err(|e| format!("sending the request: {e}"))?;
    // A server may answer (413) before it has read the body: that is allowed.
    let _ = stream.write_all(body).await;
    let reply = read_response(&mut stream).await?;
    let closing = reply.headers.get_all("connection").iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.to_ascii_lowercase().contains("close"))
    });
    if !closing {
        let next = async {
            stream
                .write_all(format!("GET /healthz HTTP/1.1\r\nhost: {host}\r\n\r\n").as_bytes())
                .await
                .map_err(|e| format!("sending: {e}"))?;
            read_response(&mut stream).await
        };
        match next.await {
            Ok(next) if next.status == 200 => {}
            Ok(next) => {
                return Err(format!(
                    "the next request on the connection got {}",
                    next.status
                ));
            }
            Err(e) => {
                return Err(format!(
                    "after answering {} without `Connection: close`, the server closed the \
                     keep-alive connection: the client's next request on it failed ({e})\n  reply: {reply:?}",
                    reply.status
                ));
            }
        }
    }
    Ok(reply)
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

/// The invariants of a `/graphql` reply, and how far it got.
fn graphql_outcome(reply: &Reply) -> Result<Outcome, String> {
    let objects = checks::graphql(reply)?;
    let mut class = Class::Transport;
    let mut limits = Vec::new();
    let mut null_data = 0;
    let transport = [400, 415].contains(&reply.status)
        && objects.len() == 1
        && objects[0]["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| {
                m.starts_with("the request is not")
                    || m.starts_with("the request is not a valid GraphQL-over-HTTP request")
                    || m.starts_with("send the request as")
            });
    for object in &objects {
        let this = checks::response(object)?;
        if !transport {
            class = class.max(this);
        }
        limits.extend(checks::limits(object));
        null_data +=
            u32::from(object.get("data") == Some(&Value::Null) && object.get("errors").is_none());
    }
    Ok(Outcome {
        class,
        limits,
        null_data,
    })
}

/// A mutation sent with GET is never executed, and is refused with 405
/// unless something refused the request first (its text or the parser, a
/// limit, the query string, the persisted-query lookup).
fn get_refuses_mutation(reply: &Reply, object: &Value) -> Result<(), String> {
    if !checks::refused(object) {
        return Err("a mutation sent with GET was executed".into());
    }
    let message = object["errors"][0]["message"].as_str().unwrap_or("");
    let earlier = checks::limits(object)
        .iter()
        .any(|limit| limit != "MUTATION_OVER_GET")
        || checks::codes(object).contains(&"PERSISTED_QUERY_NOT_FOUND")
        || [
            "syntax error",
            "the request is not a valid GraphQL-over-HTTP request",
            "persistedQuery",
            "the persistedQuery",
        ]
        .iter()
        .any(|prefix| message.starts_with(prefix))
        || [
            "spreads itself",
            "is defined twice",
            "document contains multiple operations",
            "document does not contain an operation",
            "recursion limit exceeded",
        ]
        .iter()
        .any(|parse_error| message.contains(parse_error));
    if !earlier && reply.status != 405 {
        return Err(format!(
            "a mutation sent with GET answered {} rather than 405",
            reply.status
        ));
    }
    Ok(())
}

/// The status fits the response: executed ones are 200; with
/// `application/graphql-response+json`, one refused before execution is not.
fn status_fits(reply: &Reply, object: &Value, accept: Accept) -> Result<(), String> {
    let refused = checks::refused(object);
    if !refused && reply.status != 200 {
        return Err(format!("an executed operation answered {}", reply.status));
    }
    if refused && accept.graphql_response() && reply.status == 200 {
        return Err(
            "application/graphql-response+json: a request refused before execution answered 200"
                .into(),
        );
    }
    Ok(())
}
