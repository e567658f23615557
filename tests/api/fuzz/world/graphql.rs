//! GraphQL over HTTP: POSTed JSON (single operations in odd envelopes,
//! batches, raw bodies) and GET with a query string, each reply held to
//! the GraphQL-over-HTTP statuses and to what the document's shape
//! determines. The helpers at the end are shared with `apq`, which sends
//! the same documents by hash.

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Map, Value, json};

use super::super::checks::{self, Class, Reply};
use super::super::documents::{Doc, MAX_BODY_BYTES, pad_unit};
use super::super::requests::{Accept, Case, ContentType, Envelope, PostBody, RawBody, Who};
use super::super::values::{clip, mark};
use super::{MAX_BATCH_SIZE, Outcome, World, cut, described};

impl World {
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

    pub(super) async fn post(
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
    pub(super) fn query_string(&mut self, who: Who, pairs: Vec<(&str, String)>) -> String {
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in pairs {
            let value = self.fill(&value, who).replace(&mark("pad"), "[{(x");
            serializer.append_pair(key, &value);
        }
        serializer.finish()
    }

    pub(super) async fn get(
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
}

/// The invariants of a `/graphql` reply, and how far it got.
pub(super) fn graphql_outcome(reply: &Reply) -> Result<Outcome, String> {
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
pub(super) fn get_refuses_mutation(reply: &Reply, object: &Value) -> Result<(), String> {
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
