//! Requests to the application as its clients send them, and readers for
//! what comes back.

use serde_json::{Value, json};

use super::app::{ADMIN_PASSWORD, ADMIN_USERNAME, TestApp};

pub const ME: &str = "{ me { agent { id } customer { id } permissions } }";

/// A request that needs a valid credential (of a CUSTOMER_ADMIN or better)
/// but reads neither the agent nor the customer behind it, unlike `me`: so
/// a refusal proves the credential check itself, cache included, refused it.
const PROBE: &str = "{ accessKeys(first: 1) { nodes { id } } }";

const LOGIN: &str = "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { token expiresAt agent { id username customerId permission permissions } } }";

impl TestApp {
    pub fn http(&self) -> &reqwest::Client {
        &self.client
    }

    pub fn graphql_url(&self) -> String {
        format!("{}/graphql", self.address)
    }

    /// A plain GET of `path`, as probes and scrapers send it.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    fn graphql_request(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> reqwest::RequestBuilder {
        let request = self
            .client
            .post(self.graphql_url())
            .json(&json!({ "query": query, "variables": variables }));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// POSTs one GraphQL operation and returns the whole response body.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        answer(self.graphql_request(token, query, variables)).await
    }

    /// POSTs one GraphQL operation with one extra request header.
    pub async fn gql_with_header(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
        header: (&str, &str),
    ) -> Value {
        answer(
            self.graphql_request(token, query, variables)
                .header(header.0, header.1),
        )
        .await
    }

    /// Sends one GraphQL operation from a task of its own, so that the test
    /// can go on while the server holds it (at a lock, say).
    pub fn spawn_gql(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> tokio::task::JoinHandle<Value> {
        tokio::spawn(answer(self.graphql_request(token, query, variables)))
    }

    /// A GraphQL POST of `body` carrying the request id `request_id`, for
    /// finding its log lines.
    pub fn traced(&self, token: &str, request_id: &str, body: Value) -> reqwest::RequestBuilder {
        self.client
            .post(self.graphql_url())
            .bearer_auth(token)
            .header("x-request-id", request_id)
            .json(&body)
    }

    /// POSTs any JSON body (a batch, say) to the GraphQL endpoint and
    /// returns what comes back, whatever the status.
    pub async fn post_graphql(&self, token: Option<&str>, body: &Value) -> Value {
        let mut request = self.client.post(self.graphql_url()).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("send GraphQL request");
        response.json().await.expect("JSON body")
    }

    /// `POST /auth/login`, the REST layer's login.
    pub async fn rest_login(&self, username: &str, password: &str) -> Reply {
        send(
            self.client
                .post(format!("{}/auth/login", self.address))
                .json(&json!({ "username": username, "password": password })),
        )
        .await
    }

    pub async fn login(&self, username: &str, password: &str) -> Value {
        self.gql(None, LOGIN, json!({ "u": username, "p": password }))
            .await
    }

    /// Logs in with an `X-Forwarded-For` header naming the client address
    /// (honoured only by servers configured to trust it).
    pub async fn login_from(&self, address: &str, username: &str, password: &str) -> Value {
        self.gql_with_header(
            None,
            LOGIN,
            json!({ "u": username, "p": password }),
            ("x-forwarded-for", address),
        )
        .await
    }

    /// Logs in and returns the token, failing the test if login fails.
    pub async fn token(&self, username: &str, password: &str) -> String {
        let body = self.login(username, password).await;
        body["data"]["login"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("login failed: {body}"))
            .to_owned()
    }

    pub async fn admin_token(&self) -> String {
        self.token(ADMIN_USERNAME, ADMIN_PASSWORD).await
    }

    /// Creates a customer through the API; returns the response body.
    pub async fn create_customer(&self, token: &str, input: Value) -> Value {
        self.gql(
            Some(token),
            "mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { customer { id username name detail webhookMethod webhookUri lineSecret lineToken permissionIds tmCreate tmUpdate tmDelete guestAgent { id customerId username name permission permissions } } } }",
            json!({ "input": input }),
        )
        .await
    }

    /// Creates a customer and returns its id, failing the test on error.
    pub async fn create_customer_ok(&self, token: &str, username: &str, password: &str) -> String {
        self.create_customer_with_guest(token, username, password)
            .await
            .0
    }

    /// Creates a customer whose guest agent (a CUSTOMER_ADMIN) has
    /// `password`; returns the customer id and the agent id.
    pub async fn create_customer_with_guest(
        &self,
        token: &str,
        username: &str,
        password: &str,
    ) -> (String, String) {
        let body = self
            .create_customer(token, json!({ "username": username, "password": password }))
            .await;
        let customer = &body["data"]["createCustomer"]["customer"];
        match (
            customer["id"].as_str(),
            customer["guestAgent"]["id"].as_str(),
        ) {
            (Some(id), Some(agent)) => (id.to_owned(), agent.to_owned()),
            _ => panic!("createCustomer failed: {body}"),
        }
    }

    pub async fn delete_customer(&self, token: &str, id: &str) -> Value {
        self.gql(
            Some(token),
            "mutation($id: UUID!) { deleteCustomer(input: {id: $id}) { customer { id username tmUpdate tmDelete } } }",
            json!({ "id": id }),
        )
        .await
    }

    /// Creates an access key; returns the whole response body.
    pub async fn create_access_key(&self, token: &str, input: Value) -> Value {
        self.gql(
            Some(token),
            "mutation($input: CreateAccessKeyInput!) { createAccessKey(input: $input) { token accessKey { id customerId name detail tokenPrefix tmExpire tmLastUsed tmCreate tmUpdate tmDelete } } }",
            json!({ "input": input }),
        )
        .await
    }

    /// Creates an access key and returns `(id, key)`, failing the test on error.
    pub async fn create_access_key_ok(&self, token: &str, input: Value) -> (String, String) {
        let body = self.create_access_key(token, input).await;
        let payload = &body["data"]["createAccessKey"];
        match (
            payload["accessKey"]["id"].as_str(),
            payload["token"].as_str(),
        ) {
            (Some(id), Some(key)) => (id.to_owned(), key.to_owned()),
            _ => panic!("createAccessKey failed: {body}"),
        }
    }

    pub async fn delete_access_key(&self, token: &str, id: &str) -> Value {
        self.gql(
            Some(token),
            "mutation($id: UUID!) { deleteAccessKey(input: {id: $id}) { accessKey { id customerId name tmUpdate tmDelete } } }",
            json!({ "id": id }),
        )
        .await
    }

    pub async fn logout(&self, token: &str) -> Value {
        self.gql(Some(token), "mutation { logout { revoked } }", json!({}))
            .await
    }

    pub async fn change_password(&self, token: &str, current: &str, new: &str) -> Value {
        self.gql(
            Some(token),
            "mutation($c: String!, $n: String!) { changePassword(input: {currentPassword: $c, newPassword: $n}) { agent { id username } } }",
            json!({ "c": current, "n": new }),
        )
        .await
    }

    pub async fn set_agent_password(&self, token: &str, agent_id: &str, password: &str) -> Value {
        self.gql(
            Some(token),
            "mutation($id: UUID!, $p: String!) { setAgentPassword(input: {agentId: $id, password: $p}) { agent { id username } } }",
            json!({ "id": agent_id, "p": password }),
        )
        .await
    }

    /// Adds an agent straight into the database, in the customer of the agent
    /// `like_username` and with its password; returns the new agent's id.
    pub async fn seed_agent(&self, like_username: &str, username: &str, permission: i32) -> String {
        let client = self.db.client().await;
        client
            .query_one(
                "INSERT INTO agents (id, customer_id, username, password_hash, permission)
                 SELECT gen_random_uuid(), customer_id, $2, password_hash, $3
                   FROM agents WHERE username = $1 AND tm_delete IS NULL
                 RETURNING id::text",
                &[&like_username, &username, &permission],
            )
            .await
            .expect("seed an agent")
            .get(0)
    }

    /// The customer id of the caller behind `token`.
    pub async fn own_customer_id(&self, token: &str) -> String {
        let body = self
            .gql(Some(token), "{ me { customer { id } } }", json!({}))
            .await;
        body["data"]["me"]["customer"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("me failed: {body}"))
            .to_owned()
    }

    /// Fails unless `credential` passes the credential check (`PROBE`).
    pub async fn assert_accepted(&self, credential: &str, what: &str) {
        let body = self.gql(Some(credential), PROBE, json!({})).await;
        assert!(body["errors"].is_null(), "{what}: {body}");
        assert!(
            body["data"]["accessKeys"]["nodes"].is_array(),
            "{what}: {body}"
        );
    }

    /// Fails unless the credential check (`PROBE`) refuses `credential`.
    pub async fn assert_refused(&self, credential: &str, what: &str) {
        let body = self.gql(Some(credential), PROBE, json!({})).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{what}: {body}");
        assert!(body["data"].is_null(), "{what}: {body}");
    }

    pub async fn assert_login_works(&self, username: &str, password: &str, what: &str) {
        let body = self.login(username, password).await;
        assert!(body["data"]["login"]["token"].is_string(), "{what}: {body}");
    }

    pub async fn assert_login_refused(&self, username: &str, password: &str, what: &str) {
        let body = self.login(username, password).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{what}: {body}");
        assert!(body["data"].is_null(), "{what}: {body}");
    }
}

/// The JSON body of a GraphQL response, which over `application/json` is
/// always a 200, errors included.
async fn answer(request: reqwest::RequestBuilder) -> Value {
    let response = request.send().await.expect("send GraphQL request");
    let status = response.status();
    let text = response.text().await.expect("a body");
    assert_eq!(
        status, 200,
        "GraphQL over application/json answers 200: {text}"
    );
    serde_json::from_str(&text).expect("JSON body")
}

/// One HTTP exchange, with a JSON body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

pub async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("send the request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("read the body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("the body of a {status} is not JSON: {text:?}"));
    Reply {
        status,
        headers,
        body,
    }
}

/// The `extensions.code` of the first error in a response body.
pub fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error, got {body}"))
}

pub fn error_field(body: &Value) -> &str {
    body["errors"][0]["extensions"]["field"]
        .as_str()
        .unwrap_or_else(|| panic!("expected a field, got {body}"))
}

/// The `extensions.limit` of the first error: which bound refused the document.
pub fn error_limit(body: &Value) -> &str {
    body["errors"][0]["extensions"]["limit"]
        .as_str()
        .unwrap_or_else(|| panic!("expected a limit refusal, got {body}"))
}

/// The `retryAfterSeconds` of the first error: set when the login limiter,
/// not the password, refused.
pub fn retry_after(body: &Value) -> Option<u64> {
    body["errors"][0]["extensions"]["retryAfterSeconds"].as_u64()
}

/// The session id (`jti`) a login token names.
pub fn session_id(token: &str) -> String {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url payload"),
    )
    .expect("JSON claims");
    let jti = claims["jti"].as_str().expect("a jti claim").to_owned();
    uuid::Uuid::parse_str(&jti).expect("the jti is a UUID");
    jti
}

pub fn sha256(text: &str) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

/// `prefix` and a random suffix: a name no other test (sharing the log
/// capture) uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}
