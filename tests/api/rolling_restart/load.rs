//! The load that runs through the whole roll, from concurrent tasks on the
//! test's runtime: creates (each acknowledged one recorded), listings and
//! reads of customers created earlier, and logins whose tokens are used on
//! another server.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::balancer::Balancer;

/// Prefix of every customer the load creates.
pub const PREFIX: &str = "load-";
pub const PASSWORD: &str = "rolling-password-1";
const CREATORS: usize = 3;

const CREATE: &str = "mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { customer { id username } } }";
const LIST: &str = "{ customers(first: 5) { nodes { id username } } }";
const GET: &str = "query($id: UUID!) { customer(id: $id) { id username } }";
pub const LOGIN: &str = "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { token agent { id } } }";
const ME: &str = "{ me { agent { id } } }";

/// A customer whose create was acknowledged: `(username, id)`.
pub type Created = (String, String);

pub struct Load {
    stop: Arc<AtomicBool>,
    created: Arc<Mutex<Vec<Created>>>,
    tasks: Vec<tokio::task::JoinHandle<BTreeMap<&'static str, u64>>>,
}

pub struct Finished {
    pub created: Vec<Created>,
    /// Successful operations by kind.
    pub done: BTreeMap<&'static str, u64>,
}

impl Load {
    /// Starts the load as `admin`, logging in as `agent` (whose id is
    /// `agent_id`, password `PASSWORD`).
    pub fn start(balancer: &Arc<Balancer>, admin: &str, agent: &str, agent_id: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let created = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for creator in 0..CREATORS {
            tasks.push(tokio::spawn(create(
                balancer.clone(),
                stop.clone(),
                created.clone(),
                admin.to_owned(),
                creator,
            )));
        }
        tasks.push(tokio::spawn(read(
            balancer.clone(),
            stop.clone(),
            created.clone(),
            admin.to_owned(),
        )));
        tasks.push(tokio::spawn(log_in(
            balancer.clone(),
            stop.clone(),
            agent.to_owned(),
            agent_id.to_owned(),
        )));
        Self {
            stop,
            created,
            tasks,
        }
    }

    pub fn created(&self) -> usize {
        self.created.lock().unwrap().len()
    }

    /// Stops the load after each task's request in flight.
    pub async fn finish(self) -> Finished {
        self.stop.store(true, Ordering::Relaxed);
        let mut done = BTreeMap::new();
        for task in self.tasks {
            for (kind, count) in task.await.unwrap() {
                *done.entry(kind).or_default() += count;
            }
        }
        let created = self.created.lock().unwrap().clone();
        Finished { created, done }
    }
}

async fn create(
    balancer: Arc<Balancer>,
    stop: Arc<AtomicBool>,
    created: Arc<Mutex<Vec<Created>>>,
    admin: String,
    creator: usize,
) -> BTreeMap<&'static str, u64> {
    let mut done = BTreeMap::new();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let username = format!("{PREFIX}{creator}-{n}");
        n += 1;
        let input = json!({ "input": { "username": username, "password": PASSWORD } });
        let Some((_, data)) = balancer
            .graphql("createCustomer", Some(&admin), CREATE, input, None)
            .await
        else {
            continue;
        };
        let customer = &data["createCustomer"]["customer"];
        assert_eq!(customer["username"], username.as_str(), "{data}");
        let id = customer["id"].as_str().unwrap().to_owned();
        created.lock().unwrap().push((username, id));
        *done.entry("createCustomer").or_default() += 1;
    }
    done
}

async fn read(
    balancer: Arc<Balancer>,
    stop: Arc<AtomicBool>,
    created: Arc<Mutex<Vec<Created>>>,
    admin: String,
) -> BTreeMap<&'static str, u64> {
    let mut done = BTreeMap::new();
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        if let Some((_, data)) = balancer
            .graphql("customers", Some(&admin), LIST, json!({}), None)
            .await
        {
            assert!(data["customers"]["nodes"].is_array(), "{data}");
            *done.entry("customers").or_default() += 1;
        }
        // The newest and an older acknowledged customer in turn: either
        // was created through whichever server the balancer chose.
        let earlier = {
            let created = created.lock().unwrap();
            match created.len() {
                0 => None,
                len if n % 2 == 0 => created.get(len - 1).cloned(),
                len => created.get(n % len).cloned(),
            }
        };
        let Some((username, id)) = earlier else {
            tokio::task::yield_now().await;
            continue;
        };
        if let Some((server, data)) = balancer
            .graphql("customer(id)", Some(&admin), GET, json!({ "id": id }), None)
            .await
        {
            assert_eq!(
                data["customer"]["username"],
                username.as_str(),
                "acknowledged {username} ({id}) read on {server}: {data}"
            );
            *done.entry("customer(id)").or_default() += 1;
        }
    }
    done
}

async fn log_in(
    balancer: Arc<Balancer>,
    stop: Arc<AtomicBool>,
    agent: String,
    agent_id: String,
) -> BTreeMap<&'static str, u64> {
    let mut done = BTreeMap::new();
    while !stop.load(Ordering::Relaxed) {
        let variables = json!({ "u": agent, "p": PASSWORD });
        let Some((issuer, data)) = balancer
            .graphql("login", None, LOGIN, variables, None)
            .await
        else {
            continue;
        };
        *done.entry("login").or_default() += 1;
        let token = data["login"]["token"].as_str().unwrap().to_owned();
        // The token is used on another server than the one that issued it.
        if let Some((server, data)) = balancer
            .graphql("me", Some(&token), ME, json!({}), Some(&issuer))
            .await
        {
            assert_eq!(
                data["me"]["agent"]["id"],
                agent_id.as_str(),
                "a token of {issuer} on {server}: {data}"
            );
            if server != issuer {
                *done.entry("me elsewhere").or_default() += 1;
            }
        }
    }
    done
}
