//! One request to the Admin API, built by the methods of [`Client`](crate::Client) and sent
//! when awaited.

use crate::{Client, ClientError};
use latchkey_proto::{List, Problem};
use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;

/// A request whose answer is a `T`. Await it for the `T`; [`send_as`](Call::send_as) reads
/// the same answer as another type (a `serde_json::Value` to pass it on as received);
/// [`all`](Call::all) follows a list's cursors.
///
/// A 2xx answer is the value (an empty body reads as JSON `null`, which `()` accepts); a 4xx
/// is [`ClientError::Api`] with the server's problem; a 5xx or a failed connection is
/// [`ClientError::Unavailable`]; a 3xx is [`ClientError::Redirected`].
#[must_use = "a call does nothing until it is awaited"]
pub struct Call<'c, T> {
    client: &'c Client,
    method: Method,
    path: Vec<String>,
    query: Vec<(String, String)>,
    body: Result<Option<Vec<u8>>, String>,
    answer: PhantomData<fn() -> T>,
}

// Never the body: it may carry a password.
impl<T> fmt::Debug for Call<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("method", &self.method)
            .field("path", &self.path())
            .field("query", &self.query)
            .finish()
    }
}

impl<'c, T> Call<'c, T> {
    pub(crate) fn new(client: &'c Client, method: Method, path: &[&str]) -> Self {
        Self {
            client,
            method,
            path: path.iter().map(|s| (*s).to_owned()).collect(),
            query: Vec::new(),
            body: Ok(None),
            answer: PhantomData,
        }
    }

    /// The JSON body.
    pub(crate) fn json(mut self, body: &impl Serialize) -> Self {
        self.body = serde_json::to_vec(body)
            .map(Some)
            .map_err(|e| format!("cannot encode the request body: {e}"));
        self
    }

    /// Query parameters: the fields of a filter that serializes as a flat JSON object (those
    /// left out or `null` are not sent).
    pub(crate) fn query(mut self, filter: &impl Serialize) -> Self {
        match query_pairs(filter) {
            Ok(pairs) => self.query = pairs,
            Err(e) => self.body = Err(e),
        }
        self
    }

    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The path below the base URL, for messages (it is sent with each segment encoded).
    pub fn path(&self) -> String {
        self.path.join("/")
    }

    /// Sends the call and reads the answer as a `U` rather than a `T`.
    pub async fn send_as<U: DeserializeOwned>(self) -> Result<U, ClientError> {
        self.fetch().await
    }

    async fn fetch<U: DeserializeOwned>(&self) -> Result<U, ClientError> {
        let body = self.body.clone().map_err(ClientError::Config)?;
        let client = self.client;
        let mut url = client.endpoint(&self.path);
        if !self.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&self.query);
        }
        let mut req = client
            .http
            .request(self.method.clone(), url)
            .header(ACCEPT, "application/json, application/problem+json");
        if let Some(body) = body {
            req = req.header(CONTENT_TYPE, "application/json").body(body);
        }
        let resp = req.send().await.map_err(|e| client.transport(&e))?;
        let status = resp.status();
        let header = |name| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (location, retry_after) = (header(LOCATION), header(RETRY_AFTER));
        let bytes = resp.bytes().await.map_err(|e| client.transport(&e))?;
        if status.is_redirection() {
            return Err(ClientError::Redirected {
                status: status.as_u16(),
                location,
            });
        }
        if status.is_client_error() {
            let problem = serde_json::from_slice::<Problem>(&bytes)
                .unwrap_or_else(|_| Problem::from_status(status));
            return Err(ClientError::Api {
                status: status.as_u16(),
                problem: Box::new(problem),
                retry_after: retry_after.and_then(|s| s.trim().parse().ok()),
            });
        }
        if !status.is_success() {
            let detail = serde_json::from_slice::<Problem>(&bytes)
                .ok()
                .map(|p| p.detail)
                .filter(|d| !d.trim().is_empty())
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            return Err(ClientError::Unavailable(format!(
                "the Latchkey server at {} answered HTTP {status}{detail}",
                client.shown()
            )));
        }
        let json: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"null"
        } else {
            &bytes
        };
        serde_json::from_slice(json).map_err(|e| {
            if serde_json::from_slice::<serde::de::IgnoredAny>(json).is_err() {
                ClientError::Protocol(format!(
                    "the server at {} sent an answer that is not JSON (HTTP {status}); is it a Latchkey server?",
                    client.shown()
                ))
            } else {
                ClientError::Protocol(format!(
                    "the answer to {} /{} does not read as this client expects: {e}",
                    self.method,
                    self.path()
                ))
            }
        })
    }
}

impl<'c, T: DeserializeOwned + Send + 'c> IntoFuture for Call<'c, T> {
    type Output = Result<T, ClientError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'c>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move { self.fetch::<T>().await })
    }
}

impl<T> Call<'_, List<T>> {
    /// Every page from this call's cursor on, merged into one list whose `next_cursor` is
    /// `None`.
    pub async fn all(self) -> Result<List<T>, ClientError>
    where
        T: DeserializeOwned,
    {
        self.all_as().await
    }

    /// [`all`](Call::all), reading each item as a `U` (a `serde_json::Value` to pass them on).
    pub async fn all_as<U: DeserializeOwned>(mut self) -> Result<List<U>, ClientError> {
        let mut data = Vec::new();
        loop {
            let page: List<U> = self.fetch().await?;
            data.extend(page.data);
            match page.next_cursor.filter(|c| !c.is_empty()) {
                Some(next) => {
                    if self.cursor() == Some(next.as_str()) {
                        return Err(ClientError::Protocol(format!(
                            "the list at /{} answered the same cursor twice",
                            self.path()
                        )));
                    }
                    self.query.retain(|(k, _)| k != "cursor");
                    self.query.push(("cursor".into(), next));
                }
                None => {
                    return Ok(List {
                        data,
                        next_cursor: None,
                    })
                }
            }
        }
    }

    fn cursor(&self) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == "cursor")
            .map(|(_, v)| v.as_str())
    }
}

fn query_pairs(filter: &impl Serialize) -> Result<Vec<(String, String)>, String> {
    let value =
        serde_json::to_value(filter).map_err(|e| format!("cannot encode the query: {e}"))?;
    let Value::Object(fields) = value else {
        return Err("a query is an object of parameters".into());
    };
    let mut pairs = Vec::with_capacity(fields.len());
    for (name, v) in fields {
        let v = match v {
            Value::Null => continue,
            Value::String(s) => s,
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            other => {
                return Err(format!(
                    "the query parameter {name} is not a scalar: {other}"
                ))
            }
        };
        pairs.push((name, v));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_core::Environment;
    use latchkey_proto::keys::{KeyFilter, KeyStatus};
    use latchkey_proto::Page;

    #[test]
    fn filters_become_query_parameters_and_absent_ones_are_not_sent() {
        let filter = KeyFilter {
            environment: Some(Environment::Live),
            status: Some(KeyStatus::Revoked),
            page: Page {
                limit: Some(10),
                cursor: None,
            },
            ..Default::default()
        };
        let mut pairs = query_pairs(&filter).unwrap();
        pairs.sort();
        assert_eq!(
            pairs,
            [
                ("environment".into(), "live".into()),
                ("limit".into(), "10".into()),
                ("status".into(), "revoked".into()),
            ]
        );
        assert!(query_pairs(&KeyFilter::default()).unwrap().is_empty());
        assert!(query_pairs(&vec![1]).is_err());
    }
}
