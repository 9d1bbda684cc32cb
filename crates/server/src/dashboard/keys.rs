//! API keys in the dashboard: the list first (search, filters, pages, owners for admins), a page
//! to create one, and a page per key to edit, roll, revoke, limit and watch it. Every change goes
//! through [`service::keys`], exactly as the API's does.

use super::flash::{self, Flash};
use super::form::{Field, FormErrors};
use super::limits::{self, LimitFields, KEY_LIMIT};
use super::pages::{
    last_day, listed, load_failed, messages, nav, not_found, render, short_time, usage_section,
    with_status, DashForm, LimitsForm, LimitsSection, Nav, UsageSection,
};
use super::session::DashUser;
use crate::error::ApiError;
use crate::routes::keys::{CreateKeyRequest, KeyListParams, RollKeyRequest, UpdateKeyRequest};
use crate::routes::views::KeyView;
use crate::service;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use latchkey_core::{Environment, KeyType};
use latchkey_store::ApiKeyRecord;
use serde::Deserialize;

/// Keys per page of the list.
const PAGE_SIZE: u32 = 25;

/// The grace periods a roll offers: (seconds, words).
const GRACES: [(u32, &str); 5] = [
    (0, "Now"),
    (3600, "In 1 hour"),
    (86_400, "In 24 hours"),
    (259_200, "In 3 days"),
    (604_800, "In 7 days"),
];

fn tidy_times(k: &mut KeyView) {
    k.created_at = short_time(&k.created_at);
    k.last_used_at = k.last_used_at.as_deref().map(short_time);
    k.expires_at = k.expires_at.as_deref().map(short_time);
}

/// The list's filters, as the query string carries them (empty = any).
#[derive(Deserialize, Default, Clone)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    environment: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    owner: String,
    cursor: Option<String>,
}

impl ListQuery {
    /// The same filters on another page: the query string of a pager link.
    fn with_cursor(&self, cursor: Option<&str>) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("q", self.q.as_str()),
            ("environment", &self.environment),
            ("type", &self.kind),
            ("status", &self.status),
            ("owner", &self.owner),
        ] {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
        if let Some(c) = cursor {
            q.append_pair("cursor", c);
        }
        q.finish()
    }

    fn filtered(&self) -> bool {
        [
            &self.q,
            &self.environment,
            &self.kind,
            &self.status,
            &self.owner,
        ]
        .iter()
        .any(|v| !v.is_empty())
    }
}

/// One row of the list.
pub struct KeyRow {
    pub key: KeyView,
    /// The owner's email (admins' lists only).
    pub owner: String,
}

#[derive(Template)]
#[template(path = "keys.html")]
struct KeysPage {
    nav: Nav,
    rows: Vec<KeyRow>,
    /// May the caller manage keys at all (`manage_own` or `manage_all`): see and create them.
    can_manage: bool,
    /// (user id, email) of everyone who may own keys here; empty unless the caller sees them all.
    owners: Vec<(String, String)>,
    filter: ListQuery,
    filtered: bool,
    /// The query strings of the first page (when not on it) and of the next one.
    first_page: Option<String>,
    next_page: Option<String>,
    /// A filter the API refused, in plain words.
    filter_error: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    user: DashUser,
    Query(filter): Query<ListQuery>,
) -> Response {
    let c = &user.caller;
    let owners = match service::keys::owners(&state, c).await {
        Ok(o) => o,
        Err(e) => return load_failed(&state, &user, "keys", e).await,
    };
    let any = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let params = KeyListParams {
        workspace_id: None,
        owner_id: any(&filter.owner),
        environment: filter.environment.parse::<Environment>().ok(),
        status: any(&filter.status),
        r#type: any(&filter.kind),
        name: any(filter.q.trim()),
        limit: Some(PAGE_SIZE),
        cursor: filter.cursor.clone().filter(|c| !c.is_empty()),
    };
    let mut filter_error = None;
    let (records, next) = match listed(service::keys::list(&state, c, &params).await) {
        Ok(Some(page)) => (page.data, page.next_cursor),
        Ok(None) => (vec![], None),
        Err(e @ (ApiError::Validation(_) | ApiError::BadRequest { .. })) => {
            filter_error = Some(format!(
                "These filters could not be used ({}). Clear them and try again.",
                messages(&e).join("; ")
            ));
            (vec![], None)
        }
        Err(e) => return load_failed(&state, &user, "keys", e).await,
    };
    let email_of = |id: &str| {
        owners
            .iter()
            .find(|(u, _)| u == id)
            .map_or_else(|| id.to_owned(), |(_, e)| e.clone())
    };
    let rows = records
        .iter()
        .map(|r| {
            let mut key = KeyView::current(&state, r);
            tidy_times(&mut key);
            KeyRow {
                owner: email_of(&r.owner_id),
                key,
            }
        })
        .collect();
    let page = KeysPage {
        nav: nav(&state, &user, "keys").await,
        rows,
        can_manage: service::keys::may_read_keys(c),
        owners,
        filtered: filter.filtered(),
        first_page: filter
            .cursor
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(|_| filter.with_cursor(None)),
        next_page: next.as_deref().map(|n| filter.with_cursor(Some(n))),
        filter,
        filter_error,
    };
    let status = if page.filter_error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    with_status(render(page), status)
}

// ---------------------------------------------------------------------------------------------
// Creating a key

/// The create form's fields as typed (kept when the form is refused).
#[derive(Deserialize, Default)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    environment: String,
    #[serde(default)]
    expires_on: String,
    #[serde(default)]
    permissions: String,
    #[serde(default)]
    allowed_origins: String,
    #[serde(default)]
    allowed_ips: String,
    #[serde(flatten)]
    limits: LimitFields,
}

/// The fields the API may refuse, as the create and edit forms name them.
const KEY_FIELDS: [Field; 7] = [
    Field {
        api: "name",
        input: "name",
        label: "The name",
        item_hint: None,
    },
    Field {
        api: "permissions",
        input: "permissions",
        label: "Permissions:",
        item_hint: Some(
            "Write one permission per line, like documents:read: letters, digits, _ - and . \
             between colons, or * for everything at that level.",
        ),
    },
    Field {
        api: "allowed_origins",
        input: "allowed_origins",
        label: "Allowed origins:",
        item_hint: Some("Write one origin per line, like https://app.example.com."),
    },
    Field {
        api: "allowed_ips",
        input: "allowed_ips",
        label: "Allowed IP addresses:",
        item_hint: Some("Write one address or block per line, like 203.0.113.7 or 10.0.0.0/8."),
    },
    Field {
        api: "expires_at",
        input: "expires_on",
        label: "The expiry date",
        item_hint: None,
    },
    Field {
        api: "metadata",
        input: "metadata",
        label: "Metadata",
        item_hint: None,
    },
    Field {
        api: "environment",
        input: "environment",
        label: "The environment",
        item_hint: None,
    },
];

#[derive(Template)]
#[template(path = "key_new.html")]
struct NewKeyPage {
    nav: Nav,
    form: CreateForm,
    errors: FormErrors,
    windows: Vec<(String, String, bool)>,
    refills: Vec<(String, String, bool)>,
}

async fn new_key_page(
    state: &AppState,
    user: &DashUser,
    form: CreateForm,
    errors: FormErrors,
    status: StatusCode,
) -> Response {
    if !service::keys::may_read_keys(&user.caller) {
        return super::pages::not_allowed(
            state,
            user,
            "Your role here does not include managing API keys (latchkey:keys:manage_own). \
             Ask a workspace admin to grant it.",
        )
        .await;
    }
    let page = NewKeyPage {
        nav: nav(state, user, "keys").await,
        windows: form.limits.windows(),
        refills: form.limits.refills(),
        form,
        errors,
    };
    with_status(render(page), status)
}

pub async fn new_key(State(state): State<AppState>, user: DashUser) -> Response {
    let form = CreateForm {
        kind: "secret".into(),
        environment: "test".into(),
        ..CreateForm::default()
    };
    new_key_page(&state, &user, form, FormErrors::default(), StatusCode::OK).await
}

/// One item per line (or comma), blanks dropped.
fn items(s: &str) -> Vec<String> {
    super::pages::lines(s)
}

/// `2026-12-31` → the end of that day, UTC; the field's error when it is not a date.
fn end_of_day(date: &str) -> Result<Option<String>, FormErrors> {
    let date = date.trim();
    if date.is_empty() {
        return Ok(None);
    }
    match chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d") {
        Ok(d) => Ok(Some(format!("{}T23:59:59Z", d.format("%Y-%m-%d")))),
        Err(_) => Err(FormErrors::field(
            "expires_on",
            "The expiry date must be a date like 2027-01-31.",
        )),
    }
}

pub async fn create(
    State(state): State<AppState>,
    user: DashUser,
    DashForm(f): DashForm<CreateForm>,
) -> Response {
    let refused = |f: CreateForm, e: FormErrors, status: StatusCode| {
        let (state, user) = (&state, &user);
        async move { new_key_page(state, user, f, e, status).await }
    };
    let key_type = match f.kind.as_str() {
        "publishable" => KeyType::Publishable,
        _ => KeyType::Secret,
    };
    let environment = match f.environment.as_str() {
        "live" => Environment::Live,
        _ => Environment::Test,
    };
    let expires_at = match end_of_day(&f.expires_on) {
        Ok(e) => e,
        Err(e) => return refused(f, e, StatusCode::UNPROCESSABLE_ENTITY).await,
    };
    let (ratelimits, credits) = match (f.limits.limit(KEY_LIMIT), f.limits.credits()) {
        (Ok(limit), Ok(credits)) => (limit.map(|l| vec![l]), credits),
        (Err(e), _) | (_, Err(e)) => {
            let errors = FormErrors::one(messages(&e).join(" "));
            return refused(f, errors, e.status()).await;
        }
    };
    let list = |s: &str| Some(items(s)).filter(|l| !l.is_empty());
    let req = CreateKeyRequest {
        name: f.name.clone(),
        r#type: Some(key_type),
        environment: Some(environment),
        workspace_id: None,
        owner_id: None,
        permissions: list(&f.permissions),
        expires_at,
        allowed_origins: list(&f.allowed_origins),
        allowed_ips: list(&f.allowed_ips),
        metadata: None,
        ratelimits,
        credits,
    };
    match service::keys::create(&state, &user.caller, &req).await {
        Ok(issued) => {
            let name = issued.record.name.clone();
            let flash = Flash::secret(
                "key",
                format!("Your new key “{name}”"),
                issued.key.secret().expose().to_owned(),
                format!("Key “{name}” created."),
            );
            flash::redirect(&state, &user, "/keys", flash)
        }
        Err(e) => {
            let errors = key_form_errors(&e, &f.permissions, &f.allowed_origins, &f.allowed_ips);
            refused(f, errors, e.status()).await
        }
    }
}

/// The API's refusal placed on a key form's fields, its list items named as typed.
fn key_form_errors(e: &ApiError, permissions: &str, origins: &str, ips: &str) -> FormErrors {
    FormErrors::from_api(e, &KEY_FIELDS, |input| match input {
        "permissions" => items(permissions),
        "allowed_origins" => items(origins),
        "allowed_ips" => items(ips),
        _ => vec![],
    })
}

// ---------------------------------------------------------------------------------------------
// A key's page

/// The edit form's fields as typed.
#[derive(Deserialize, Default)]
pub struct EditForm {
    #[serde(default)]
    name: String,
    /// A checkbox: present when ticked.
    enabled: Option<String>,
    #[serde(default)]
    permissions: String,
    #[serde(default)]
    allowed_origins: String,
    #[serde(default)]
    allowed_ips: String,
    #[serde(default)]
    metadata: String,
    #[serde(default)]
    expires_on: String,
}

impl EditForm {
    /// The form as the key's settings fill it.
    fn of(k: &ApiKeyRecord) -> Self {
        Self {
            name: k.name.clone(),
            enabled: k.enabled.then(String::new),
            permissions: k
                .permissions
                .as_ref()
                .map(|p| p.to_strings().join("\n"))
                .unwrap_or_default(),
            allowed_origins: k.allowed_origins.join("\n"),
            allowed_ips: k
                .allowed_ips
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
            metadata: if k.metadata.as_object().is_some_and(|m| m.is_empty()) {
                String::new()
            } else {
                serde_json::to_string_pretty(&k.metadata).unwrap_or_default()
            },
            expires_on: k
                .expires_at
                .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_default(),
        }
    }

    /// Only what the person changed, so a save never rewrites what they did not touch (an
    /// expiry to the second, say, becomes the end of its day only if its date was edited).
    fn change(&self, k: &ApiKeyRecord) -> Result<UpdateKeyRequest, FormErrors> {
        let was = Self::of(k);
        let mut req = UpdateKeyRequest::default();
        if self.name.trim() != was.name {
            req.name = Some(self.name.clone());
        }
        if self.enabled.is_some() != k.enabled {
            req.enabled = Some(self.enabled.is_some());
        }
        if items(&self.permissions) != items(&was.permissions) {
            let p = items(&self.permissions);
            req.permissions = Some((!p.is_empty()).then_some(p));
        }
        if items(&self.allowed_origins) != items(&was.allowed_origins) {
            req.allowed_origins = Some(items(&self.allowed_origins));
        }
        if items(&self.allowed_ips) != items(&was.allowed_ips) {
            req.allowed_ips = Some(items(&self.allowed_ips));
        }
        if self.metadata.trim() != was.metadata.trim() {
            let text = self.metadata.trim();
            req.metadata = Some(if text.is_empty() {
                serde_json::json!({})
            } else {
                serde_json::from_str(text).map_err(|_| {
                    FormErrors::field(
                        "metadata",
                        "Metadata must be a JSON object, like {\"plan\": \"pro\"}.",
                    )
                })?
            });
        }
        if self.expires_on.trim() != was.expires_on {
            req.expires_at = Some(end_of_day(&self.expires_on)?);
        }
        Ok(req)
    }

    fn nothing(req: &UpdateKeyRequest) -> bool {
        req.name.is_none()
            && req.enabled.is_none()
            && req.permissions.is_none()
            && req.allowed_origins.is_none()
            && req.allowed_ips.is_none()
            && req.metadata.is_none()
            && req.expires_at.is_none()
    }
}

#[derive(Template)]
#[template(path = "key.html")]
struct KeyPage {
    nav: Nav,
    key: KeyView,
    owner: String,
    can_manage: bool,
    edit: EditForm,
    edit_errors: FormErrors,
    graces: Vec<(u32, &'static str)>,
    /// The key this one was rolled to, and whether it is still in its grace period.
    rolled_to: Option<String>,
    limits: LimitsSection,
    usage: Option<UsageSection>,
    /// The limits form's errors (the included `limits.html` reads `errors`).
    errors: Vec<String>,
    /// Why a roll or revoke was refused.
    problems: Vec<String>,
}

/// What a key's page shows besides the key: a refused form's input and errors.
#[derive(Default)]
struct Typed {
    problems: Vec<String>,
    edit: Option<(EditForm, FormErrors)>,
    limits: Option<(LimitFields, Vec<String>)>,
}

async fn key_view(state: &AppState, user: &DashUser, id: &str, typed: Typed) -> Response {
    let c = &user.caller;
    let record = match service::keys::get(state, c, id).await {
        Ok(k) => k,
        Err(ApiError::NotFound) => return not_found(state, user).await,
        Err(e) => return load_failed(state, user, "key", e).await,
    };
    let points = match last_day() {
        Ok(span) => service::usage::of_key(state, c, &record.id, span).await,
        Err(e) => Err(e),
    };
    let usage = match usage_section(points) {
        Ok(u) => u,
        Err(e) => return load_failed(state, user, "key", e).await,
    };
    let owner = match service::keys::owner_email(state, c, &record).await {
        Ok(o) => o,
        Err(e) => return load_failed(state, user, "key", e).await,
    };
    let can_manage = service::keys::may_manage(c, &record);
    let (limit_fields, errors) = typed.limits.map_or((None, vec![]), |(f, e)| (Some(f), e));
    let limits = LimitsSection::new(
        format!("/keys/{}/limits", record.id),
        KEY_LIMIT,
        &record.ratelimits,
        record.credits.as_ref(),
        limit_fields,
        can_manage,
    );
    let (edit, edit_errors) = typed
        .edit
        .unwrap_or_else(|| (EditForm::of(&record), FormErrors::default()));
    let mut key = KeyView::current(state, &record);
    tidy_times(&mut key);
    render(KeyPage {
        nav: nav(state, user, "keys").await,
        rolled_to: record.rolled_to.clone(),
        key,
        owner,
        can_manage,
        edit,
        edit_errors,
        graces: GRACES.to_vec(),
        limits,
        usage,
        errors,
        problems: typed.problems,
    })
}

pub async fn page(
    State(state): State<AppState>,
    user: DashUser,
    Path(id): Path<String>,
) -> Response {
    key_view(&state, &user, &id, Typed::default()).await
}

/// The key's page again with what was typed and what went wrong, with the API's status.
async fn refused(
    state: &AppState,
    user: &DashUser,
    id: &str,
    typed: Typed,
    status: StatusCode,
) -> Response {
    with_status(key_view(state, user, id, typed).await, status)
}

/// The edit form: `PATCH /v1/keys/{id}` with what changed.
pub async fn update(
    State(state): State<AppState>,
    user: DashUser,
    Path(id): Path<String>,
    DashForm(f): DashForm<EditForm>,
) -> Response {
    let c = &user.caller;
    let record = match service::keys::get(&state, c, &id).await {
        Ok(k) => k,
        Err(ApiError::NotFound) => return not_found(&state, &user).await,
        Err(e) => return load_failed(&state, &user, "key", e).await,
    };
    let req = match f.change(&record) {
        Ok(req) => req,
        Err(errors) => {
            let typed = Typed {
                edit: Some((f, errors)),
                ..Typed::default()
            };
            return refused(&state, &user, &id, typed, StatusCode::UNPROCESSABLE_ENTITY).await;
        }
    };
    let to = format!("/keys/{}", record.id);
    if EditForm::nothing(&req) {
        return flash::redirect(&state, &user, &to, Flash::ok("Nothing changed."));
    }
    match service::keys::update(&state, c, &record.id, &req).await {
        Ok(k) => flash::redirect(
            &state,
            &user,
            &to,
            Flash::ok(format!("Key “{}” saved.", k.name)),
        ),
        Err(e) => {
            let errors = key_form_errors(&e, &f.permissions, &f.allowed_origins, &f.allowed_ips);
            let status = e.status();
            let typed = Typed {
                edit: Some((f, errors)),
                ..Typed::default()
            };
            refused(&state, &user, &id, typed, status).await
        }
    }
}

#[derive(Deserialize)]
pub struct RollForm {
    grace_seconds: Option<u32>,
}

pub async fn roll(
    State(state): State<AppState>,
    user: DashUser,
    Path(id): Path<String>,
    DashForm(f): DashForm<RollForm>,
) -> Response {
    let grace = f.grace_seconds.unwrap_or(0);
    let req = RollKeyRequest {
        grace_seconds: Some(grace),
    };
    match service::keys::roll(&state, &user.caller, &id, &req).await {
        Ok(issued) => {
            let name = issued.record.name.clone();
            let old = match GRACES.iter().find(|(s, _)| *s == grace) {
                Some((0, _)) | None => "The old key has stopped working.".to_owned(),
                Some((_, words)) => format!(
                    "The old key keeps working until it expires {}.",
                    words.to_lowercase()
                ),
            };
            let flash = Flash::secret(
                "key",
                format!("The new key for “{name}”"),
                issued.key.secret().expose().to_owned(),
                format!("Key “{name}” rolled. {old}"),
            );
            flash::redirect(&state, &user, &format!("/keys/{}", issued.record.id), flash)
        }
        Err(ApiError::NotFound) => not_found(&state, &user).await,
        Err(e) => problem(&state, &user, &id, &e).await,
    }
}

/// A refused roll or revoke: the key's page again, saying why at the top, with the API's status.
async fn problem(state: &AppState, user: &DashUser, id: &str, e: &ApiError) -> Response {
    let typed = Typed {
        problems: messages(e),
        ..Typed::default()
    };
    refused(state, user, id, typed, e.status()).await
}

/// The revoke form's answer to "are you sure?".
#[derive(Deserialize, Default)]
pub struct RevokeForm {
    /// `yes` once the person has confirmed: on [`RevokePage`], or in `app.js`'s dialog.
    #[serde(default)]
    confirmed: String,
}

/// "Revoke “CI”?": the question asked on a page of its own when no dialog asked it (the
/// browser runs no JavaScript), so that revoking never happens in one unconfirmed click.
#[derive(Template)]
#[template(path = "key_revoke.html")]
struct RevokePage {
    nav: Nav,
    key: KeyView,
}

pub async fn revoke(
    State(state): State<AppState>,
    user: DashUser,
    Path(id): Path<String>,
    DashForm(f): DashForm<RevokeForm>,
) -> Response {
    let record = match service::keys::get(&state, &user.caller, &id).await {
        Ok(k) => k,
        Err(ApiError::NotFound) => return not_found(&state, &user).await,
        Err(e) => return load_failed(&state, &user, "key", e).await,
    };
    // Asking changes nothing, so a reload of the question is harmless; a revoked key is not
    // asked about again (the API's answer says what happened).
    if f.confirmed != "yes" && record.revoked_at.is_none() {
        let mut key = KeyView::current(&state, &record);
        tidy_times(&mut key);
        return render(RevokePage {
            nav: nav(&state, &user, "keys").await,
            key,
        });
    }
    let name = record.name;
    match service::keys::revoke(&state, &user.caller, &id).await {
        Ok(()) => flash::redirect(
            &state,
            &user,
            "/keys",
            Flash::ok(format!(
                "Key “{name}” revoked. Requests with it fail from now on."
            )),
        ),
        Err(ApiError::NotFound) => not_found(&state, &user).await,
        Err(e) => problem(&state, &user, &id, &e).await,
    }
}

/// The key's limit named [`KEY_LIMIT`] and its credits: `PATCH /v1/keys/{id}`'s `ratelimits`
/// (the key's whole list, the others kept) and `credits`.
pub async fn save_limits(
    State(state): State<AppState>,
    user: DashUser,
    Path(id): Path<String>,
    DashForm(f): DashForm<LimitsForm>,
) -> Response {
    let c = &user.caller;
    let refuse = |f: LimitsForm, e: ApiError| {
        let (state, user, id) = (&state, &user, &id);
        async move {
            let status = e.status();
            let typed = Typed {
                limits: Some((f.fields, messages(&e))),
                ..Typed::default()
            };
            refused(state, user, id, typed, status).await
        }
    };
    let record = match service::keys::get(&state, c, &id).await {
        Ok(k) => k,
        Err(e) => return refuse(f, e).await,
    };
    let change = match f.change(KEY_LIMIT) {
        Ok(change) => change,
        Err(e) => return refuse(f, e).await,
    };
    let to = format!("/keys/{}", record.id);
    if change.limit.is_none() && change.credits.is_none() {
        return flash::redirect(&state, &user, &to, Flash::ok("Nothing changed."));
    }
    let req = UpdateKeyRequest {
        ratelimits: change
            .limit
            .map(|l| limits::replace_limit(&record.ratelimits, KEY_LIMIT, l)),
        credits: change.credits,
        ..UpdateKeyRequest::default()
    };
    match service::keys::update(&state, c, &record.id, &req).await {
        Ok(_) => flash::redirect(&state, &user, &to, Flash::ok("Limits and credits saved.")),
        Err(e) => refuse(f, e).await,
    }
}
