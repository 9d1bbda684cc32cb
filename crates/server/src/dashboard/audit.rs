//! The audit log in the dashboard: who did what to which object, named (emails and key names
//! beside the ids), changes as from → to, filtered by action or by a person's email, to the
//! second in UTC, a page at a time.

use super::pages::{load_failed, nav, not_allowed, render, with_status, Nav};
use super::session::DashUser;
use crate::error::ApiError;
use crate::routes::audit::AuditParams;
use crate::service;
use crate::service::audit::Names;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use latchkey_core::permission::AUDIT_READ;
use latchkey_store::AuditEvent;
use serde::Deserialize;
use serde_json::Value;

const PAGE_SIZE: u32 = 50;

/// Every action the log can hold, for the filter.
const ACTIONS: [&str; 30] = [
    "key.created",
    "key.updated",
    "key.rolled",
    "key.revoked",
    "key.leaked",
    "key.credits_refilled",
    "usage.exceeded",
    "token.issued",
    "token.renewed",
    "token.revoked",
    "user.created",
    "user.deactivated",
    "user.updated",
    "workspace.created",
    "workspace.updated",
    "member.added",
    "member.role_changed",
    "member.updated",
    "member.removed",
    "member.credits_refilled",
    "role.updated",
    "grant.created",
    "grant.deleted",
    "signing_key.rotated",
    "portal.session_created",
    "portal.session_used",
    "webhook.created",
    "webhook.updated",
    "webhook.deleted",
    "webhook.secret_rotated",
];

/// `1764690383` → `2026-12-02 15:46:23 UTC`.
pub fn full_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| t.to_string())
}

/// One event as a row.
pub struct AuditRow {
    /// When, as [`full_time`] in two parts that each stay on one line (`2026-12-02`,
    /// `15:46:23 UTC`), so that the column may take two lines rather than widen the table.
    pub day: String,
    pub time: String,
    pub action: String,
    /// "Dana (dana@example.com)" and the credential used ("with key “CI”"), or "system".
    pub actor: String,
    pub credential: String,
    /// The object by name, with its kind: `key “Checkout”`, `user dana@example.com`.
    pub target: String,
    pub target_id: String,
    /// What changed, in words: `developer → admin`, `name, enabled`.
    pub change: String,
    pub ip: String,
}

fn quoted(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "none".into(),
        other => other.to_string(),
    }
}

/// What an event's detail says changed, for the ones that record it.
pub fn change_of(action: &str, detail: &Value) -> String {
    let from_to = |d: &Value| match (d.get("from"), d.get("to")) {
        (Some(f), Some(t)) => Some(format!("{} → {}", quoted(f), quoted(t))),
        _ => None,
    };
    if let Some(ft) = from_to(detail) {
        return ft;
    }
    let mut parts = vec![];
    if let Some(fields) = detail.get("fields").and_then(Value::as_array) {
        let names: Vec<String> = fields.iter().map(quoted).collect();
        if !names.is_empty() {
            parts.push(format!("changed {}", names.join(", ")));
        }
    }
    for what in ["role", "name", "ratelimits", "credits"] {
        if let Some(ft) = detail.get(what).and_then(from_to) {
            parts.push(format!("{what}: {ft}"));
        }
    }
    if parts.is_empty() && action == "role.updated" {
        if let Some(p) = detail.get("permissions").and_then(Value::as_array) {
            let p: Vec<String> = p.iter().map(quoted).collect();
            parts.push(format!("permissions: {}", p.join(", ")));
        }
    }
    parts.join("; ")
}

fn row(e: &AuditEvent, names: &Names) -> AuditRow {
    let person = |id: &str| match names.people.get(id) {
        Some((email, name)) if name != email => format!("{name} ({email})"),
        Some((email, _)) => email.clone(),
        None => id.to_owned(),
    };
    let actor = match &e.actor.user_id {
        Some(u) => person(u),
        None => "system".into(),
    };
    let credential = match (&e.actor.credential_id, &e.actor.credential_name) {
        (_, Some(n)) => format!("with “{n}”"),
        (Some(id), None) => match names.keys.get(id) {
            Some(n) => format!("with “{n}”"),
            None => format!("with {id}"),
        },
        _ => String::new(),
    };
    let target = match e.target_type.as_str() {
        "key" => {
            let name = names
                .keys
                .get(&e.target_id)
                .cloned()
                .or_else(|| e.detail.get("name").map(quoted));
            match name {
                Some(n) => format!("key “{n}”"),
                None => "key".into(),
            }
        }
        "user" => format!("user {}", person(&e.target_id)),
        other => other.to_owned(),
    };
    let at = full_time(e.at);
    let (day, time) = at.split_once(' ').map_or_else(
        || (at.clone(), String::new()),
        |(d, t)| (d.into(), t.into()),
    );
    AuditRow {
        day,
        time,
        action: e.action.clone(),
        actor,
        credential,
        target,
        target_id: e.target_id.clone(),
        change: change_of(&e.action, &e.detail),
        ip: e.actor.ip.clone().unwrap_or_default(),
    }
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    nav: Nav,
    events: Vec<AuditRow>,
    actions: Vec<&'static str>,
    filter: AuditQuery,
    filtered: bool,
    /// The query strings of the first page (when not on it) and the next.
    first_page: Option<String>,
    next_page: Option<String>,
    /// A filter that could not be used, in plain words.
    problem: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    action: String,
    /// A person's email.
    #[serde(default)]
    person: String,
    cursor: Option<String>,
}

impl AuditQuery {
    fn with_cursor(&self, cursor: Option<&str>) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if !self.action.is_empty() {
            q.append_pair("action", &self.action);
        }
        if !self.person.is_empty() {
            q.append_pair("person", &self.person);
        }
        if let Some(c) = cursor {
            q.append_pair("cursor", c);
        }
        q.finish()
    }
}

pub async fn page(
    State(state): State<AppState>,
    user: DashUser,
    Query(q): Query<AuditQuery>,
) -> Response {
    let c = &user.caller;
    if !c.allows(AUDIT_READ) {
        return not_allowed(
            &state,
            &user,
            "Reading the audit log needs latchkey:audit:read.",
        )
        .await;
    }
    let mut problem = None;
    let people = match service::audit::people(&state, c).await {
        Ok(p) => p,
        Err(e) => return load_failed(&state, &user, "audit", e).await,
    };
    // A person is found by email among the workspace's members; one who is not there has done
    // nothing here that this log can show.
    let email = q.person.trim().to_lowercase();
    let actor = if email.is_empty() {
        None
    } else {
        match people.iter().find(|(_, (e, _))| *e == email) {
            Some((id, _)) => Some(id.clone()),
            None => {
                problem = Some(format!(
                    "No member of this workspace has the email {email}."
                ));
                None
            }
        }
    };
    let params = AuditParams {
        workspace_id: Some(c.workspace_id().to_owned()),
        actor,
        action: Some(q.action.clone()).filter(|a| !a.is_empty()),
        since: None,
        limit: Some(PAGE_SIZE),
        cursor: q.cursor.clone().filter(|c| !c.is_empty()),
    };
    let (events, next) = if problem.is_some() {
        (vec![], None)
    } else {
        match service::audit::list(&state, c, &params).await {
            Ok(page) => (page.data, page.next_cursor),
            Err(ApiError::Validation(_) | ApiError::BadRequest { .. }) => {
                problem = Some("These filters could not be used. Clear them and try again.".into());
                (vec![], None)
            }
            Err(e) => return load_failed(&state, &user, "audit", e).await,
        }
    };
    let names = match service::audit::key_names(&state, c, &events).await {
        Ok(keys) => Names { people, keys },
        Err(e) => return load_failed(&state, &user, "audit", e).await,
    };
    let page = AuditPage {
        nav: nav(&state, &user, "audit").await,
        events: events.iter().map(|e| row(e, &names)).collect(),
        actions: ACTIONS.to_vec(),
        filtered: !q.action.is_empty() || !q.person.is_empty(),
        first_page: q
            .cursor
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(|_| q.with_cursor(None)),
        next_page: next.as_deref().map(|n| q.with_cursor(Some(n))),
        filter: q,
        problem,
    };
    let status = if page.problem.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    with_status(render(page), status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changes_in_words() {
        assert_eq!(
            change_of(
                "member.role_changed",
                &json!({"from": "developer", "to": "admin"})
            ),
            "developer → admin"
        );
        assert_eq!(
            change_of("key.updated", &json!({"fields": ["name", "enabled"]})),
            "changed name, enabled"
        );
        assert_eq!(
            change_of("user.updated", &json!({"name": {"from": "A", "to": "B"}})),
            "name: A → B"
        );
        assert_eq!(change_of("key.created", &json!({"name": "x"})), "");
        assert_eq!(full_time(0), "1970-01-01 00:00:00 UTC");
    }
}
