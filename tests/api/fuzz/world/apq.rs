//! Automatic persisted queries: a document registered with its hash and
//! then used by the hash alone, over POST or GET, and the ways a client
//! can get the extension wrong. Kept apart from `graphql` because one case
//! here is two requests whose outcomes depend on each other.

use reqwest::header::CONTENT_TYPE;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::super::checks::{self, Reply};
use super::super::documents::{Doc, Expect};
use super::super::requests::{ApqMode, Case};
use super::super::values::{clip, mark};
use super::graphql::{get_refuses_mutation, graphql_outcome};
use super::{Outcome, World, cut, described};

impl World {
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

    pub(super) async fn apq(
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
}
