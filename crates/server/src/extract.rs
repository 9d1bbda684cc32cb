//! Request extractors whose rejections are [`ApiError`]s, so no plain-text error escapes.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A JSON body. Syntax errors are 400; a well-formed body with a wrong field is 422 naming it.
/// As a response: the value serialized into one right-sized buffer (axum's `Json` writes
/// through a growing `BytesMut`, which showed up in the verification profile).
pub struct ApiJson<T>(pub T);

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        let mut buf = Vec::with_capacity(512);
        match serde_json::to_writer(&mut buf, &self.0) {
            Ok(()) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                buf,
            )
                .into_response(),
            Err(e) => {
                tracing::error!(error = %e, "serializing a response failed");
                ApiError::Internal.into_response()
            }
        }
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = json_content_type(req.headers());
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let ApiBytes(bytes) = ApiBytes::from_request(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// A raw body (the OAuth forms), up to axum's body limit (2 MiB). Every body extractor reads
/// through this one, so a body over the limit is always a 413 problem, never axum's plain text.
pub struct ApiBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(ApiBytes)
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge
                } else {
                    ApiError::bad_request("Could not read the request body")
                }
            })
    }
}

/// `application/json` or any `application/*+json`, in any letter case.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(m) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim)
    else {
        return false;
    };
    let starts = |p: &str| m.len() >= p.len() && m[..p.len()].eq_ignore_ascii_case(p);
    let ends = |p: &str| m.len() >= p.len() && m[m.len() - p.len()..].eq_ignore_ascii_case(p);
    m.eq_ignore_ascii_case("application/json") || (starts("application/") && ends("+json"))
}

/// Every JSON body of this API is an object (an endpoint wanting anything else reads
/// [`ApiBytes`]). serde's derived structs also take a JSON array of their fields in order, so
/// `[null, null]` passed for `{"name": null, "instance_role": null}`: an array is refused
/// here, as a string or a number already is by serde (422 on `body`).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.trim_ascii_start().starts_with(b"[") {
        return Err(ApiError::validation(
            "body",
            "must be a JSON object, not an array",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if !inner.is_data() {
            return ApiError::bad_request(format!(
                "Malformed JSON body: {}",
                strip_position(&inner.to_string())
            ));
        }
        let msg = strip_position(&inner.to_string());
        // serde reports a missing or unknown field at the parent's path; name the field itself.
        let field = match quoted_field(&msg) {
            Some(f) if path == "." => f.to_owned(),
            Some(f) if path == f || path.ends_with(&format!(".{f}")) => path,
            Some(f) => format!("{path}.{f}"),
            None if path == "." => "body".to_owned(),
            None => path,
        };
        ApiError::validation(&field, msg)
    })?;
    // A body is one JSON value. `serde_json::from_slice` checks this itself; a deserializer
    // driven from outside leaves it to the caller, and `{"name": "x"} junk` was accepted.
    de.end().map_err(|_| {
        ApiError::bad_request("Malformed JSON body: trailing characters after the JSON value")
    })?;
    Ok(value)
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

fn quoted_field(msg: &str) -> Option<&str> {
    let rest = msg
        .strip_prefix("missing field `")
        .or_else(|| msg.strip_prefix("unknown field `"))?;
    rest.split('`').next()
}

/// Query string parameters.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded_like(q);
        de.map(ApiQuery)
    }
}

fn serde_urlencoded_like<T: DeserializeOwned>(q: &str) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{q}")
            .parse()
            .map_err(|_| ApiError::bad_request("Invalid query string"))?,
    )
    .map(|axum::extract::Query(v)| v)
    .map_err(|e| {
        let text = e.body_text();
        let text = text
            .strip_prefix("Failed to deserialize query string: ")
            .unwrap_or(&text);
        ApiError::bad_request(format!("Invalid query string: {text}"))
    })
}

/// Path parameters; a path that does not parse is a 404 like any unknown object.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| ApiPath(v))
            .map_err(ApiError::from)
    }
}

/// Whether a body is absent for [`ApiJsonOrEmpty`]: nothing, or only JSON's whitespace
/// (RFC 8259 §2). Not Rust's ASCII whitespace, which also counts a form feed: a body of `\x0c`
/// is not JSON, and must not pass as "no options".
pub fn is_blank(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// A JSON body that may also be absent entirely (e.g. `POST /v1/keys/{id}/roll` with no options).
pub struct ApiJsonOrEmpty<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for ApiJsonOrEmpty<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = json_content_type(req.headers());
        let ApiBytes(bytes) = ApiBytes::from_request(req, state).await?;
        // JSON's whitespace (RFC 8259 §2), not Rust's ASCII whitespace, which also counts a
        // form feed: a body of `\x0c` is not JSON, and must not pass as "no options".
        if bytes
            .iter()
            .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            return Ok(ApiJsonOrEmpty(T::default()));
        }
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        parse_json(&bytes).map(ApiJsonOrEmpty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        inner: Option<Inner>,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        n: u8,
    }

    fn field(e: ApiError) -> String {
        match e {
            ApiError::Validation(errs) => errs[0].field.clone(),
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn json_errors_name_the_field() {
        assert!(matches!(
            parse_json::<Body>(b"{"),
            Err(ApiError::BadRequest { .. })
        ));
        assert_eq!(field(parse_json::<Body>(b"{}").unwrap_err()), "name");
        assert_eq!(
            field(parse_json::<Body>(br#"{"name": 1}"#).unwrap_err()),
            "name"
        );
        assert_eq!(
            field(parse_json::<Body>(br#"{"name": "a", "x": 1}"#).unwrap_err()),
            "x"
        );
        assert_eq!(
            field(parse_json::<Body>(br#"{"name": "a", "inner": {"n": 300}}"#).unwrap_err()),
            "inner.n"
        );
        assert!(parse_json::<Body>(br#"{"name": "a"}"#).is_ok());
    }

    #[test]
    fn a_body_is_an_object_never_an_array_of_its_fields() {
        for not_an_object in [&br#"["a", null]"#[..], b" \n[\"a\"]", br#""a""#, b"1"] {
            assert_eq!(
                field(parse_json::<Body>(not_an_object).unwrap_err()),
                "body",
                "{}",
                String::from_utf8_lossy(not_an_object)
            );
        }
        assert!(parse_json::<Body>(br#" {"name": "a"}"#).is_ok());
    }

    #[test]
    fn a_body_is_one_value() {
        for junk in [
            &br#"{"name": "a"} junk"#[..],
            br#"{"name": "a"}{}"#,
            br#"{"name": "a"},"#,
        ] {
            assert!(
                matches!(parse_json::<Body>(junk), Err(ApiError::BadRequest { .. })),
                "{}",
                String::from_utf8_lossy(junk)
            );
        }
        assert!(parse_json::<Body>(b"{\"name\": \"a\"}\n\t ").is_ok());
    }
}
