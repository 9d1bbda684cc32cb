//! The body of every error answer: RFC 9457 problem details (SPEC §3).

use serde::{Deserialize, Serialize};
use std::fmt;

/// `{"type", "title", "status", "detail", "code", "errors"?}`. Read leniently (a missing
/// member takes its default) so the error of a proxy in front of Latchkey still reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// `urn:latchkey:problem:{code}`.
    #[serde(default = "about_blank")]
    pub r#type: String,
    /// The HTTP status's reason phrase.
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub status: u16,
    /// What went wrong, for people: `Invalid or missing API key`, `Not found`, ….
    #[serde(default)]
    pub detail: String,
    /// For programs: `invalid_credentials`, `not_found`, `validation_failed`, `conflict`, ….
    #[serde(default)]
    pub code: String,
    /// A 422's field errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

/// One invalid field of a 422: `{"field": "name", "message": "must be 1 to 100 characters"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// The field's path in the request body: `name`, `permissions[0]`.
    pub field: String,
    pub message: String,
}

fn about_blank() -> String {
    "about:blank".into()
}

impl Problem {
    /// The problem an answer without a problem+json body stands for (RFC 9457 §4.2.1).
    pub fn from_status(status: http::StatusCode) -> Self {
        Self {
            r#type: about_blank(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: String::new(),
            code: String::new(),
            errors: None,
        }
    }
}

/// For people: the `detail` (else the `title`, else the status), then any field errors:
/// `Validation failed: name: must be 1 to 100 characters; expires_at: must be in the future`.
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let detail = self.detail.trim();
        let title = self.title.trim();
        if !detail.is_empty() {
            f.write_str(detail)?;
        } else if !title.is_empty() {
            f.write_str(title)?;
        } else {
            write!(f, "HTTP {}", self.status)?;
        }
        let fields = self.errors.iter().flatten();
        for (i, e) in fields.enumerate() {
            f.write_str(if i == 0 { ": " } else { "; " })?;
            if e.field.is_empty() {
                f.write_str(&e.message)?;
            } else {
                write!(f, "{}: {}", e.field, e.message)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_detail_is_the_message() {
        let p: Problem = serde_json::from_str(
            r#"{"type":"urn:latchkey:problem:invalid_credentials","title":"Unauthorized",
                "status":401,"detail":"Invalid or missing API key","code":"invalid_credentials"}"#,
        )
        .unwrap();
        assert_eq!(p.to_string(), "Invalid or missing API key");
        assert_eq!(p.code, "invalid_credentials");
        assert_eq!(p.errors, None);
    }

    #[test]
    fn a_validation_problem_lists_its_field_errors() {
        let p: Problem = serde_json::from_str(
            r#"{"status":422,"title":"Unprocessable Entity","detail":"Validation failed",
                "errors":[{"field":"name","message":"must be 1 to 100 characters"},
                          {"field":"expires_at","message":"must be in the future"}]}"#,
        )
        .unwrap();
        assert_eq!(
            p.to_string(),
            "Validation failed: name: must be 1 to 100 characters; expires_at: must be in the future"
        );
    }

    #[test]
    fn a_partial_problem_falls_back_to_its_title_then_its_status() {
        let p: Problem = serde_json::from_str(r#"{"title":"Not Found"}"#).unwrap();
        assert_eq!(
            (p.to_string(), p.r#type.as_str()),
            ("Not Found".into(), "about:blank")
        );
        let p: Problem = serde_json::from_str(r#"{"status": 418}"#).unwrap();
        assert_eq!(p.to_string(), "HTTP 418");
        let p = Problem::from_status(http::StatusCode::NOT_FOUND);
        assert_eq!((p.status, p.to_string()), (404, "Not Found".into()));
    }
}
