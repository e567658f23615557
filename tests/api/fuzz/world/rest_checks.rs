//! What the newer REST endpoints promise beyond the error contract every
//! reply keeps: only the statuses their OpenAPI description lists, only
//! the credentials and permissions they name, answers about the record
//! the path names and about no other customer's, and an access key shown
//! once, at its creation, never again. A handler that misroutes, skips a
//! permission check or applies a field it does not take breaks one of
//! these without any 5xx.

use serde_json::Value;
use uuid::Uuid;

use super::super::checks::{Reply, contains_key};
use super::super::requests::{Endpoint, Role, Who};
use super::World;

/// What a call to one of the newer endpoints sent, and what came back.
pub(super) struct Sent<'a> {
    pub endpoint: Endpoint,
    pub who: Who,
    /// The path id as sent (percent-encoded), for endpoints that take one.
    pub id: Option<&'a str>,
    pub query: &'a [(String, String)],
    /// The path reached the server as built (not normalised into another).
    pub routed: bool,
    pub reply: &'a Reply,
}

/// `9999-01-01 00:00:00.000000` stands for a time that is not set.
const UNSET: &str = "9999-01-01 00:00:00.000000";

/// The statuses the endpoint's OpenAPI description lists (503 is every
/// endpoint's; 413 every body's).
fn documented(endpoint: Endpoint) -> &'static [u16] {
    match endpoint {
        Endpoint::UpdateCustomer
        | Endpoint::LineInfo
        | Endpoint::PermissionIds
        | Endpoint::Password
        | Endpoint::UpdateKey => &[200, 400, 401, 403, 404, 413, 503],
        Endpoint::GetOwn => &[200, 401, 403, 503],
        Endpoint::UpdateOwn => &[200, 400, 401, 403, 413, 503],
        Endpoint::ListKeys => &[200, 400, 401, 403, 503],
        Endpoint::CreateKey => &[200, 400, 401, 403, 404, 409, 413, 503],
        Endpoint::GetKey | Endpoint::DeleteKey => &[200, 400, 401, 403, 404, 503],
    }
}

/// The path id the server reads (it percent-decodes the segment), if it
/// is a UUID in any of the spellings the server accepts.
fn requested(id: &str) -> Option<Uuid> {
    let decoded: String =
        url::form_urlencoded::parse(format!("x={}", id.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
    Uuid::try_parse(&decoded).ok()
}

fn uuid_at(body: &Value, pointer: &str) -> Result<Uuid, String> {
    body.pointer(pointer)
        .and_then(Value::as_str)
        .and_then(|s| Uuid::try_parse(s).ok())
        .ok_or_else(|| format!("no UUID at {pointer}"))
}

impl World {
    pub(super) fn endpoint_outcome(&self, sent: &Sent<'_>) -> Result<(), String> {
        let reply = sent.reply;
        let endpoint = sent.endpoint;
        let body: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        if sent.routed && !documented(endpoint).contains(&reply.status) {
            // Two different credentials are refused before any endpoint runs.
            let credential_conflict = reply.status == 400
                && body.pointer("/error/field").and_then(Value::as_str) == Some("token");
            if !credential_conflict {
                return Err(format!(
                    "{endpoint:?} answered {}, which its contract does not list ({:?})",
                    reply.status,
                    documented(endpoint)
                ));
            }
        }
        if reply.status >= 300 {
            return Ok(());
        }
        let caller = match sent.who.role {
            Role::SuperAdmin => &self.platform,
            Role::CustomerAdmin | Role::AccessKey => &self.customer,
            Role::Agent => {
                return Err(format!(
                    "a plain agent (CUSTOMER_AGENT) got {} from {endpoint:?}, which needs \
                     CUSTOMER_ADMIN or a super admin",
                    reply.status
                ));
            }
            role => {
                return Err(format!(
                    "{role:?} got {} from {endpoint:?}: that credential must be refused",
                    reply.status
                ));
            }
        };
        let caller = Uuid::try_parse(caller).map_err(|e| format!("the world's id: {e}"))?;
        let super_admin = sent.who.role == Role::SuperAdmin;
        match (endpoint, sent.who.role) {
            (Endpoint::Password, Role::AccessKey) => {
                return Err("an access key set a customer's password (only agents may)".into());
            }
            (Endpoint::CreateKey, Role::AccessKey) => {
                return Err("an access key created an access key".into());
            }
            (Endpoint::PermissionIds, role) if role != Role::SuperAdmin => {
                return Err(format!("{role:?} set permission ids (super admins only)"));
            }
            _ => {}
        }
        let path_id = sent.id.and_then(requested);
        let same_record = |found: Uuid| match path_id {
            Some(asked) if asked != found => {
                Err(format!("asked about {asked}, the reply is about {found}"))
            }
            _ => Ok(()),
        };
        let own = |customer: Uuid, what: &str| {
            if !super_admin && customer != caller {
                return Err(format!(
                    "{:?} of customer {caller} got {what} of customer {customer}",
                    sent.who.role
                ));
            }
            Ok(())
        };
        match endpoint {
            Endpoint::ListKeys => {
                let items = body["result"]
                    .as_array()
                    .ok_or("a key list without `result`")?;
                // As the server reads it: the first one, empty meaning absent.
                let asked = sent
                    .query
                    .iter()
                    .find(|(k, _)| k == "customer_id")
                    .and_then(|(_, v)| Uuid::try_parse(v).ok());
                for item in items {
                    if contains_key(item, "token") {
                        return Err("a listed access key carries the key itself".into());
                    }
                    let customer = uuid_at(item, "/customer_id")?;
                    own(customer, "a key")?;
                    if super_admin && asked.is_some_and(|asked| asked != customer) {
                        return Err(format!(
                            "the keys of {asked:?} were asked for, one of {customer} came back"
                        ));
                    }
                }
            }
            Endpoint::CreateKey => {
                let key = body["token"].as_str().unwrap_or("");
                if !key.starts_with("vb_") {
                    return Err("a new access key without its `token`".into());
                }
                let no_store = reply
                    .headers
                    .get("cache-control")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.contains("no-store"));
                if !no_store {
                    return Err(
                        "a new access key was sent without `Cache-Control: no-store`".into(),
                    );
                }
                own(uuid_at(&body, "/customer_id")?, "a new key")?;
            }
            Endpoint::GetKey | Endpoint::UpdateKey | Endpoint::DeleteKey => {
                if contains_key(&body, "token") {
                    return Err("an access key's reply carries the key itself".into());
                }
                same_record(uuid_at(&body, "/id")?)?;
                own(uuid_at(&body, "/customer_id")?, "a key")?;
                if endpoint == Endpoint::UpdateKey && body["tm_delete"] != UNSET {
                    return Err("a revoked access key was renamed".into());
                }
                if endpoint == Endpoint::DeleteKey && body["tm_delete"] == UNSET {
                    return Err("a deleted access key has no `tm_delete`".into());
                }
            }
            Endpoint::GetOwn | Endpoint::UpdateOwn => {
                let id = uuid_at(&body, "/id")?;
                if id != caller {
                    return Err(format!(
                        "the caller's own customer is {caller}, the reply is about {id}"
                    ));
                }
            }
            Endpoint::UpdateCustomer
            | Endpoint::LineInfo
            | Endpoint::PermissionIds
            | Endpoint::Password => {
                let id = uuid_at(&body, "/id")?;
                same_record(id)?;
                own(id, "a change")?;
                if body["tm_delete"] != UNSET {
                    return Err("a deleted customer was changed".into());
                }
            }
        }
        Ok(())
    }

    /// A key the server issued must never be shown again: from now on it
    /// counts as a secret, in replies and in the logs.
    pub(super) fn keep_issued_key(&mut self, reply: &Reply) {
        if reply.status != 200 {
            return;
        }
        let body: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        if let Some(key) = body["token"].as_str() {
            self.secrets.push(key.to_owned());
        }
    }
}
