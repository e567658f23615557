//! Who the cases act as, and their repair. A case may log a principal
//! out, change its password, revoke its key or delete its customer; the
//! next cases must still act as intended, or a run would depend on the
//! order of its cases rather than on its seed alone.

use serde_json::json;

use super::{Principal, World};
use crate::harness::{ADMIN_PASSWORD, ADMIN_USERNAME};

impl World {
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

    pub(super) async fn new_super_admin(&mut self) {
        self.seq += 1;
        let username = format!("fzsuper{}", self.seq);
        // Another agent of the platform with the super admin bit, and the
        // bootstrap admin's password.
        self.app.seed_agent(ADMIN_USERNAME, &username, 1).await;
        self.super_admin = self.login(&username, ADMIN_PASSWORD).await;
    }

    pub(super) async fn new_customer(&mut self) {
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

    pub(super) async fn new_other_customer(&mut self) {
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

    /// Deleted or frozen: its agents and keys no longer work, so the next
    /// cases need a new one.
    async fn deleted(&self, customer: &str) -> bool {
        self.db
            .query_one(
                "SELECT tm_delete IS NOT NULL OR tm_freeze IS NOT NULL FROM customers WHERE id::text = $1",
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
}
