//! Webhook endpoints in the dashboard (SPEC §12.1), for workspace admins: add one (its secret
//! shown once), enable or disable it, change its events, rotate its secret, delete it, and see
//! and redeliver its deliveries. Every decision is [`service::webhooks`]'s, as for the API.

use super::flash::{self, Flash};
use super::form::{Field, FormErrors};
use super::pages::{
    listed, load_failed, nav, not_allowed, not_found, render, short_time, with_status, DashForm,
    Nav,
};
use super::session::DashUser;
use crate::error::ApiError;
use crate::routes::views::{ts, PageParams};
use crate::routes::webhooks::{CreateWebhookRequest, UpdateWebhookRequest};
use crate::service;
use crate::state::AppState;
use crate::webhooks::ROTATION_OVERLAP_SECONDS;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use latchkey_core::permission::MEMBERS_MANAGE;
use latchkey_store::{DeliveryStatus, WebhookDelivery, WebhookEndpoint};

/// What a person is told when their role does not include webhooks.
const ADMINS_ONLY: &str =
    "Webhooks are for workspace admins: they need latchkey:members:manage in this workspace.";

/// The fields the API may refuse, as the forms name them.
const FIELDS: [Field; 3] = [
    Field {
        api: "url",
        input: "url",
        label: "The URL",
        item_hint: None,
    },
    Field {
        api: "events",
        input: "events",
        label: "Events:",
        item_hint: None,
    },
    Field {
        api: "description",
        input: "description",
        label: "The description",
        item_hint: None,
    },
];

/// One checkbox of the events picker.
pub struct EventChoice {
    pub value: String,
    /// The checkbox's id (`ev-key-created`, `ev-all`), prefixed per form.
    pub id: String,
    pub label: String,
    pub checked: bool,
}

/// `*` and every event, ticked as in `chosen`; a filter the API accepted that is not on the
/// list (`key.*`) is offered too, ticked, so saving the form keeps it.
fn event_choices(prefix: &str, chosen: &[String]) -> Vec<EventChoice> {
    let mut values: Vec<String> = std::iter::once("*")
        .chain(latchkey_core::webhooks::EVENTS.iter().copied())
        .map(str::to_owned)
        .collect();
    for c in chosen {
        if !values.contains(c) {
            values.push(c.clone());
        }
    }
    values
        .into_iter()
        .map(|v| EventChoice {
            id: format!(
                "{prefix}-{}",
                if v == "*" {
                    "all".to_owned()
                } else {
                    v.replace('.', "-").replace('*', "any")
                }
            ),
            label: if v == "*" {
                "All events (*)".to_owned()
            } else {
                v.clone()
            },
            checked: chosen.contains(&v),
            value: v,
        })
        .collect()
}

/// A form's fields, repeated checkboxes included: `events=a&events=b`.
type Fields = Vec<(String, String)>;

fn value(f: &Fields, name: &str) -> Option<String> {
    f.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

fn events_of(f: &Fields) -> Vec<String> {
    f.iter()
        .filter(|(k, _)| k == "events")
        .map(|(_, v)| v.clone())
        .collect()
}

/// The fields both endpoint forms show (templates/webhook_fields.html): URL, description and
/// events, as set or as typed when refused, with the refusal's words beside them.
pub struct EndpointFields {
    /// Prefixes the inputs' ids: `webhook-url` on the create form, `edit-url` on the edit form.
    pub id: &'static str,
    pub url: String,
    pub description: String,
    pub events: Vec<EventChoice>,
    pub errors: FormErrors,
}

impl EndpointFields {
    /// What was typed; `ev` prefixes the event checkboxes' ids.
    fn typed(id: &'static str, ev: &str, f: &Fields, errors: FormErrors) -> Self {
        Self {
            id,
            url: value(f, "url").unwrap_or_default(),
            description: value(f, "description").unwrap_or_default(),
            events: event_choices(ev, &events_of(f)),
            errors,
        }
    }
}

/// The API's refusal on the form's fields, in plain words.
fn form_errors(e: &ApiError, events: &[String]) -> FormErrors {
    let mut errors = FormErrors::from_api(e, &FIELDS, |_| vec![]);
    if events.is_empty() && errors.has("events") {
        errors.replace("events", "Choose at least one event, or All events (*).");
    }
    errors
}

// ---------------------------------------------------------------------------------------------
// The list and the "Add endpoint" form

/// An endpoint as a row or a page shows it.
pub struct EndpointRow {
    pub id: String,
    pub url: String,
    pub description: String,
    pub events: String,
    pub enabled: bool,
    pub created_at: String,
}

impl EndpointRow {
    fn of(e: &WebhookEndpoint) -> Self {
        Self {
            id: e.id.clone(),
            url: e.url.clone(),
            description: e.description.clone(),
            events: e.events.join(", "),
            enabled: e.enabled,
            created_at: short_time(&ts(e.created_at)),
        }
    }
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct WebhooksPage {
    nav: Nav,
    rows: Vec<EndpointRow>,
    form: EndpointFields,
}

async fn list_view(
    state: &AppState,
    user: &DashUser,
    typed: Option<(Fields, FormErrors)>,
    status: StatusCode,
) -> Response {
    let c = &user.caller;
    if !c.allows(MEMBERS_MANAGE) {
        return not_allowed(state, user, ADMINS_ONLY).await;
    }
    let page = PageParams {
        limit: Some(500),
        cursor: None,
    };
    let rows = match listed(service::webhooks::list(state, c, &page).await) {
        Ok(Some(p)) => p.data.iter().map(EndpointRow::of).collect(),
        Ok(None) => return not_allowed(state, user, ADMINS_ONLY).await,
        Err(e) => return load_failed(state, user, "webhooks", e).await,
    };
    let (fields, errors) = typed.unwrap_or_default();
    let page = WebhooksPage {
        nav: nav(state, user, "webhooks").await,
        rows,
        form: EndpointFields::typed("webhook", "new-ev", &fields, errors),
    };
    with_status(render(page), status)
}

pub async fn list(State(state): State<AppState>, user: DashUser) -> Response {
    list_view(&state, &user, None, StatusCode::OK).await
}

/// "Add endpoint": the new endpoint's secret is shown once on the page the redirect leads to.
pub async fn create(
    State(state): State<AppState>,
    user: DashUser,
    DashForm(f): DashForm<Fields>,
) -> Response {
    let events = events_of(&f);
    let description = value(&f, "description").unwrap_or_default();
    let req = CreateWebhookRequest {
        url: value(&f, "url").unwrap_or_default().trim().to_owned(),
        events: events.clone(),
        description: Some(description.trim().to_owned()).filter(|d| !d.is_empty()),
    };
    match service::webhooks::create(&state, &user.caller, &req).await {
        Ok(created) => {
            let flash = Flash::secret(
                "secret",
                format!("The signing secret for {}", created.endpoint.url),
                created.secret.expose().to_owned(),
                "Endpoint added. Verify each delivery's webhook-signature with this secret.".into(),
            );
            let to = format!("/webhooks/{}", created.endpoint.id);
            flash::redirect(&state, &user, &to, flash)
        }
        Err(ApiError::Forbidden(_)) if !user.caller.allows(MEMBERS_MANAGE) => {
            not_allowed(&state, &user, ADMINS_ONLY).await
        }
        Err(e) => {
            let errors = form_errors(&e, &events);
            let status = e.status();
            list_view(&state, &user, Some((f, errors)), status).await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// An endpoint's page

/// A delivery as its row shows it.
pub struct DeliveryRow {
    pub id: String,
    pub event_type: String,
    pub event_id: String,
    /// `delivered`, `pending` or `failed`.
    pub status: &'static str,
    pub attempts: i64,
    pub created_at: String,
    /// The next attempt, while pending.
    pub next_attempt_at: Option<String>,
    pub response: String,
    pub error: String,
}

impl DeliveryRow {
    fn of(d: &WebhookDelivery) -> Self {
        let status = match d.status {
            DeliveryStatus::Succeeded => "delivered",
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Failed => "failed",
        };
        Self {
            id: d.id.clone(),
            event_type: d.event_type.clone(),
            event_id: d.event_id.clone(),
            status,
            attempts: d.attempts,
            created_at: short_time(&ts(d.created_at)),
            next_attempt_at: (d.status == DeliveryStatus::Pending)
                .then(|| short_time(&ts(d.next_attempt_at))),
            response: d
                .last_status_code
                .map_or_else(|| "none".to_owned(), |c| c.to_string()),
            error: d.last_error.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "webhook.html")]
struct WebhookPage {
    nav: Nav,
    endpoint: EndpointRow,
    /// The previous secret's last signing moment, while it still signs.
    previous_until: Option<String>,
    form: EndpointFields,
    enabled: bool,
    problems: Vec<String>,
    deliveries: Vec<DeliveryRow>,
}

/// What the page draws again after a refused form.
#[derive(Default)]
struct Typed {
    edit: Option<(Fields, FormErrors)>,
    problems: Vec<String>,
}

async fn endpoint_view(
    state: &AppState,
    user: &DashUser,
    id: &str,
    typed: Typed,
    status: StatusCode,
) -> Response {
    let c = &user.caller;
    if !c.allows(MEMBERS_MANAGE) {
        return not_allowed(state, user, ADMINS_ONLY).await;
    }
    let e = match service::webhooks::get(state, c, id).await {
        Ok(e) => e,
        Err(ApiError::NotFound) => return not_found(state, user).await,
        Err(ApiError::Forbidden(_)) => return not_allowed(state, user, ADMINS_ONLY).await,
        Err(e) => return load_failed(state, user, "webhook", e).await,
    };
    let page = PageParams {
        limit: Some(100),
        cursor: None,
    };
    let deliveries = match service::webhooks::deliveries(state, c, id, &page).await {
        Ok(p) => p.data.iter().map(DeliveryRow::of).collect(),
        Err(e) => return load_failed(state, user, "webhook", e).await,
    };
    let now = crate::now();
    let previous_until = e
        .previous_expires_at
        .filter(|t| e.previous_secret.is_some() && *t > now)
        .map(|t| short_time(&ts(t)));
    let (form, enabled) = match typed.edit {
        Some((f, errors)) => (
            EndpointFields::typed("edit", "edit-ev", &f, errors),
            value(&f, "enabled").is_some(),
        ),
        None => (
            EndpointFields {
                id: "edit",
                url: e.url.clone(),
                description: e.description.clone(),
                events: event_choices("edit-ev", &e.events),
                errors: FormErrors::default(),
            },
            e.enabled,
        ),
    };
    let page = WebhookPage {
        nav: nav(state, user, "webhooks").await,
        endpoint: EndpointRow::of(&e),
        previous_until,
        form,
        enabled,
        problems: typed.problems,
        deliveries,
    };
    with_status(render(page), status)
}

pub async fn page(
    State(state): State<AppState>,
    user: DashUser,
    Path(id): Path<String>,
) -> Response {
    endpoint_view(&state, &user, &id, Typed::default(), StatusCode::OK).await
}

/// A refused action: the endpoint's page again saying why, with the API's status.
async fn problem(state: &AppState, user: &DashUser, id: &str, e: &ApiError) -> Response {
    match e {
        ApiError::NotFound => not_found(state, user).await,
        ApiError::Forbidden(_) if !user.caller.allows(MEMBERS_MANAGE) => {
            not_allowed(state, user, ADMINS_ONLY).await
        }
        _ => {
            let typed = Typed {
                problems: super::pages::messages(e),
                ..Typed::default()
            };
            endpoint_view(state, user, id, typed, e.status()).await
        }
    }
}

/// The settings form: URL, description, events and enabled, as `PATCH /v1/webhooks/{id}`. The
/// URL is checked as on creation; the SSRF guard applies when a delivery is sent, as always.
pub async fn update(
    State(state): State<AppState>,
    user: DashUser,
    Path(id): Path<String>,
    DashForm(f): DashForm<Fields>,
) -> Response {
    let events = events_of(&f);
    let enabled = value(&f, "enabled").is_some();
    let req = UpdateWebhookRequest {
        url: Some(value(&f, "url").unwrap_or_default().trim().to_owned()),
        events: Some(events.clone()),
        description: Some(
            value(&f, "description")
                .unwrap_or_default()
                .trim()
                .to_owned(),
        ),
        enabled: Some(enabled),
    };
    match service::webhooks::update(&state, &user.caller, &id, &req).await {
        Ok(e) => {
            let said = if e.enabled {
                "Endpoint saved. It is enabled: events are delivered to it."
            } else {
                "Endpoint saved. It is disabled: no events are delivered to it until it is enabled again."
            };
            flash::redirect(
                &state,
                &user,
                &format!("/webhooks/{}", e.id),
                Flash::ok(said),
            )
        }
        Err(e @ ApiError::Validation(_)) => {
            let typed = Typed {
                edit: Some((f, form_errors(&e, &events))),
                ..Typed::default()
            };
            endpoint_view(&state, &user, &id, typed, e.status()).await
        }
        Err(e) => problem(&state, &user, &id, &e).await,
    }
}

/// "Rotate secret": a new secret shown once; the old one keeps signing for a while.
pub async fn rotate(
    State(state): State<AppState>,
    user: DashUser,
    Path(id): Path<String>,
) -> Response {
    match service::webhooks::rotate_secret(&state, &user.caller, &id).await {
        Ok(rotated) => {
            let hours = ROTATION_OVERLAP_SECONDS / 3600;
            let flash = Flash::secret(
                "secret",
                format!("The new signing secret for {}", rotated.endpoint.url),
                rotated.secret.expose().to_owned(),
                format!(
                    "Secret rotated. Deliveries are signed with both the old and the new secret \
                     for {hours} hours, then with the new one only."
                ),
            );
            let to = format!("/webhooks/{}", rotated.endpoint.id);
            flash::redirect(&state, &user, &to, flash)
        }
        Err(e) => problem(&state, &user, &id, &e).await,
    }
}

pub async fn delete(
    State(state): State<AppState>,
    user: DashUser,
    Path(id): Path<String>,
) -> Response {
    let url = service::webhooks::get(&state, &user.caller, &id)
        .await
        .map(|e| e.url)
        .unwrap_or_default();
    match service::webhooks::delete(&state, &user.caller, &id).await {
        Ok(()) => flash::redirect(
            &state,
            &user,
            "/webhooks",
            Flash::ok(format!(
                "Endpoint {url} deleted. No more events are sent to it."
            )),
        ),
        Err(e) => problem(&state, &user, &id, &e).await,
    }
}

/// "Redeliver": the same event again (same id and body), as soon as the worker next looks.
pub async fn redeliver(
    State(state): State<AppState>,
    user: DashUser,
    Path((id, delivery_id)): Path<(String, String)>,
) -> Response {
    match service::webhooks::redeliver(&state, &user.caller, &id, &delivery_id).await {
        Ok(d) => {
            // The worker sends to enabled endpoints only: say so rather than let it look lost.
            let enabled = service::webhooks::get(&state, &user.caller, &id)
                .await
                .is_ok_and(|e| e.enabled);
            let when = if enabled {
                "Reload in a moment to see the new attempt."
            } else {
                "It is sent once the endpoint is enabled again."
            };
            flash::redirect(
                &state,
                &user,
                &format!("/webhooks/{id}"),
                Flash::ok(format!(
                    "Redelivery of {} ({}) queued. {when}",
                    d.event_type, d.event_id
                )),
            )
        }
        Err(e) => problem(&state, &user, &id, &e).await,
    }
}
