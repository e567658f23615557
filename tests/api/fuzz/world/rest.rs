//! Sending a REST call: the credential in the place the case chose (the
//! header, `?token=`, `?accesskey=`, both, or two that disagree), the path
//! id filled in or sent hostile, the query string and the body. Every
//! reply is held to the REST error contract; the newer endpoints also to
//! their own (`rest_checks`).

use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};

use super::super::checks::{self, Class};
use super::super::documents::MAX_BODY_BYTES;
use super::super::requests::{Case, CredentialPlace, Endpoint, PathId, RestCall, Who};
use super::super::values::{clip, mark};
use super::rest_bodies::Shape;
use super::rest_checks::Sent;
use super::{Outcome, World, cut, described};

impl World {
    /// A path id as sent: a placeholder filled in, hostile text
    /// percent-encoded, or verbatim (already encoded, or meant not to be).
    fn path_id(&mut self, id: &PathId, who: Who) -> String {
        match id {
            PathId::Mark(name) => self.fill(&mark(name), who),
            PathId::Raw(raw) => url::form_urlencoded::byte_serialize(raw.as_bytes())
                .collect::<String>()
                .replace('+', "%20"),
            PathId::Verbatim(text) => (*text).to_owned(),
        }
    }

    pub(super) async fn rest(
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
        let mut body = None;
        let mut sent_id = None;
        let (method, path, rest_path) = match call {
            RestCall::Login(b) => {
                body = Some(self.rest_body(b, Shape::Login, who));
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
                format!("/v1.0/customers/{}", self.path_id(i, who)),
                true,
            ),
            RestCall::Create(b) => {
                body = Some(self.rest_body(b, Shape::Create, who));
                (Method::POST, "/v1.0/customers".to_owned(), true)
            }
            RestCall::Delete(i) => (
                Method::DELETE,
                format!("/v1.0/customers/{}", self.path_id(i, who)),
                true,
            ),
            RestCall::Put(i) => (
                Method::PUT,
                format!("/v1.0/customers/{}", self.path_id(i, who)),
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
            RestCall::Endpoint(c) => {
                for (k, v) in &c.query {
                    let v = self.fill(v, who);
                    parameters.push((k.clone(), v));
                }
                if let Some(b) = &c.body {
                    body = Some(self.rest_body(b, Shape::Endpoint(c.endpoint), who));
                }
                let id = match &c.id {
                    Some(i) => self.path_id(i, who),
                    None => String::new(),
                };
                let path = c.endpoint.path(&id);
                sent_id = c.id.is_some().then_some(id);
                let method = Method::from_bytes(c.endpoint.method().as_bytes()).unwrap();
                (method, path, true)
            }
        };
        let query = parameters.clone();
        let mut url = format!("{}{path}", self.app.address);
        if !parameters.is_empty() {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(parameters)
                .finish();
            url = format!("{url}?{query}");
        }
        let (url, _) = cut(url);
        // As the client normalises it (`/v1.0/%2e%2e/graphql` is `/graphql`).
        let normalized = reqwest::Url::parse(&url).map(|u| u.path().to_owned());
        let rest_path = rest_path
            && normalized
                .as_ref()
                .is_ok_and(|p| p.starts_with("/v1.0") || p.starts_with("/auth/"));
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
        let outcome = (|| {
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
            if let RestCall::Endpoint(c) = call {
                self.endpoint_outcome(&Sent {
                    endpoint: c.endpoint,
                    who,
                    id: sent_id.as_deref(),
                    query: &query,
                    // The route the client asked for, unless it normalised
                    // the path into another one.
                    routed: normalized.as_ref().is_ok_and(|p| *p == path),
                    reply: &reply,
                })?;
            }
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
        .map_err(|e| described(e, &describe(), &reply))?;
        if let RestCall::Endpoint(c) = call
            && c.endpoint == Endpoint::CreateKey
        {
            self.keep_issued_key(&reply);
        }
        Ok(outcome)
    }
}
