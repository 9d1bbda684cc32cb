//! The dashboard's pages. Each action turns its form into the API's request type and calls the
//! same [`crate::service`] function as the API handler that does the same thing, so the rules
//! (permissions, tenancy, validation, audit) are the API's own; a page adds only its HTML.

use super::chart::{self, Totals};
use super::flash::{self, Flash};
use super::limits::{self, LimitFields, MEMBER_LIMIT};
use super::session::{self, DashUser};
use crate::auth::client_ip;
use crate::error::ApiError;
use crate::password;
use crate::routes::users::CreateUserRequest;
use crate::routes::views::{MemberView, PageParams, RoleView};
use crate::routes::workspaces::{PutMemberRequest, PutRoleRequest, UpdateWorkspaceRequest};
use crate::service;
use crate::service::usage::{Point, Span, Window};
use crate::state::AppState;
use crate::words::LimitRow;
use askama::Template;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{header, request::Parts, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use latchkey_core::credits::Credits;
use latchkey_core::permission::{AUDIT_READ, MEMBERS_MANAGE};
use latchkey_core::ratelimit::NamedLimit;
use latchkey_core::Secret;
use serde::Deserialize;

// ---------------------------------------------------------------------------------------------
// Shared page parts

/// What every signed-in page shows around its content.
pub struct Nav {
    pub active: &'static str,
    pub csrf: String,
    pub email: String,
    pub workspace_id: String,
    pub workspace_name: String,
    pub workspaces: Vec<(String, String, String)>,
    pub can_manage_members: bool,
    pub can_read_audit: bool,
    pub flashes: Vec<(&'static str, String)>,
    /// A new key or token, shown this once.
    pub secret: Option<super::flash::Shown>,
    pub brand: super::brand::Brand,
    /// "← Back to <host>", for a session a portal link opened.
    pub back: Option<super::portal::BackLink>,
}

pub(super) async fn nav(state: &AppState, user: &DashUser, active: &'static str) -> Nav {
    let c = &user.caller;
    let mut flashes: Vec<(&'static str, String)> =
        user.flash.ok.iter().map(|m| ("ok", m.clone())).collect();
    // The page itself can still be shown; the switcher says it is incomplete rather than
    // pretend the user has no other workspace.
    let workspaces = match state.store.user_workspaces(c.user_id()).await {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "the dashboard could not list the user's workspaces");
            flashes.push((
                "error",
                "Your other workspaces could not be loaded. Reload the page to try again.".into(),
            ));
            vec![]
        }
    };
    Nav {
        active,
        csrf: user.session.csrf_token.clone(),
        email: c.resolved.principal.email.clone(),
        workspace_id: c.workspace_id().to_owned(),
        workspace_name: c.resolved.workspace.name.clone(),
        workspaces,
        can_manage_members: c.allows(MEMBERS_MANAGE),
        can_read_audit: c.allows(AUDIT_READ),
        flashes,
        secret: user.flash.secret.clone(),
        brand: super::brand::Brand::of(&state.dashboard),
        back: user
            .session
            .return_url
            .as_deref()
            .and_then(super::portal::back_link)
            // The provider's product name, when configured, says more than its host.
            .map(|mut b| {
                if let Some(name) = &state.dashboard.product_name {
                    b.host.clone_from(name);
                }
                b
            }),
    }
}

pub(super) fn render(t: impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering a page failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal server error").into_response()
        }
    }
}

/// The page `r` answered with `status` (a refused form's 422, a 404 page). A response that is
/// not a drawn page (the 404 for what the caller may not see, a page that failed to render)
/// keeps its own status.
pub(super) fn with_status(mut r: Response, status: StatusCode) -> Response {
    if r.status().is_success() {
        *r.status_mut() = status;
    }
    r
}

/// An API error as lines a person can read.
pub(super) fn messages(e: &ApiError) -> Vec<String> {
    let p = e.problem();
    match p.errors {
        Some(errs) => errs
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect(),
        None => vec![p.detail],
    }
}

#[derive(Template)]
#[template(path = "bare_error.html")]
struct BareErrorPage<'a> {
    heading: &'a str,
    message: &'a str,
    /// The provider's brand where the page knows it; Latchkey's otherwise.
    brand: Option<super::brand::Brand>,
}

/// The 403 page, for a request that did not get as far as a session.
pub fn forbidden(message: &str) -> Response {
    bare_error(StatusCode::FORBIDDEN, "Not allowed", message)
}

pub(crate) fn bare_error(status: StatusCode, heading: &str, message: &str) -> Response {
    let mut r = render(BareErrorPage {
        heading,
        message,
        brand: None,
    });
    *r.status_mut() = status;
    r
}

/// The HTML 404 for a URL that is no page (see [`super::not_found`]).
pub fn page_not_found(state: &AppState) -> Response {
    let page = BareErrorPage {
        heading: "Page not found",
        message: "There is no page at this address. Check the link, or start again from your keys.",
        brand: Some(super::brand::Brand::of(&state.dashboard)),
    };
    with_status(render(page), StatusCode::NOT_FOUND)
}

/// The 503 page: the database is out of reach, so the session could not be checked. Not a
/// sign-out: the cookie stays, and the same page works once the database is back.
pub fn unavailable() -> Response {
    let mut r = bare_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "The dashboard cannot reach its database right now. Try again in a moment.",
    );
    r.headers_mut().insert(
        header::RETRY_AFTER,
        header::HeaderValue::from_static(crate::error::RETRY_AFTER_SECONDS),
    );
    r
}

/// The 413 page: a form over [`super::MAX_FORM_BYTES`].
pub fn form_too_large() -> Response {
    bare_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "Form too large",
        "The form was too large. Shorten what you typed and try again.",
    )
}

/// A dashboard form: at most [`super::MAX_FORM_BYTES`], and when it is not a form we can read,
/// a page a person can read (axum's `Form` answers in plain text). Forms behind the CSRF guard
/// arrive already read and bounded; sign-in is read here.
pub struct DashForm<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for DashForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        // Any read error is answered as too large: the only other cause is a broken connection,
        // whose client never sees the answer.
        let bytes = axum::body::to_bytes(body, super::MAX_FORM_BYTES)
            .await
            .map_err(|_| form_too_large())?;
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        match Form::<T>::from_request(req, state).await {
            Ok(Form(v)) => Ok(DashForm(v)),
            Err(_) => Err(bare_error(
                StatusCode::BAD_REQUEST,
                "Form not understood",
                "The form could not be read. Reload the page and try again.",
            )),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    nav: Nav,
    heading: &'static str,
    message: String,
}

pub(super) async fn not_allowed(state: &AppState, user: &DashUser, message: &str) -> Response {
    let page = ErrorPage {
        nav: nav(state, user, "").await,
        heading: "Not allowed",
        message: message.into(),
    };
    let mut r = render(page);
    *r.status_mut() = StatusCode::FORBIDDEN;
    r
}

/// The 404 page: no such object, or one the caller may not see (the API's 404, the same for
/// both, so a page never tells which).
pub(super) async fn not_found(state: &AppState, user: &DashUser) -> Response {
    let page = ErrorPage {
        nav: nav(state, user, "").await,
        heading: "Not found",
        message: "There is nothing here, or it is not yours to see.".into(),
    };
    let mut r = render(page);
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

/// A page whose data could not be read (the database failed): an error page with a 5xx
/// status, never an empty list that looks like "nothing here". The cause is logged (the store
/// error itself where it happened); the page names no internals.
pub(super) async fn load_failed(
    state: &AppState,
    user: &DashUser,
    page: &'static str,
    e: ApiError,
) -> Response {
    tracing::error!(page, status = %e.status(), "a dashboard page could not load its data");
    let status = if e.status().is_server_error() {
        e.status()
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    let page = ErrorPage {
        nav: nav(state, user, "").await,
        heading: "Something went wrong",
        message: "This page could not be loaded. Try again in a moment; if it keeps happening, \
                  tell whoever runs this Latchkey."
            .into(),
    };
    let mut r = render(page);
    *r.status_mut() = status;
    r
}

/// What a page lists: the API's answer; a refusal (the caller may not read it, which the page
/// explains) is an empty list; any other failure is for [`load_failed`].
pub(super) fn listed<T>(r: Result<T, ApiError>) -> Result<Option<T>, ApiError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(ApiError::Forbidden(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `2026-11-22T06:57:46Z` → `2026-11-22 06:57 UTC`, for people.
pub(super) fn short_time(t: &str) -> String {
    match (t.get(..10), t.get(11..16)) {
        // A no-break space keeps "10:59 UTC" whole where a narrow column puts the time under
        // its day.
        (Some(d), Some(hm)) if t.ends_with('Z') => format!("{d} {hm}\u{a0}UTC"),
        _ => t.to_owned(),
    }
}

pub(super) fn lines(s: &str) -> Vec<String> {
    s.split(['\n', ','])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Sign-in

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    email: String,
    error: Option<String>,
    /// `[dashboard] password_login`.
    password_login: bool,
    /// The single sign-on provider's name, when one is configured.
    sso: Option<String>,
    brand: super::brand::Brand,
}

const LOGIN_CSRF: &str = "lk_login_csrf";
/// The longest password an account can have (`Validator::password`).
const MAX_PASSWORD_CHARS: usize = 1024;

/// The sign-in form carries a token that must match a cookie (double submit): no session yet.
pub(crate) fn login_form(
    state: &AppState,
    email: String,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let csrf = session::random_token();
    let mut r = render(LoginPage {
        csrf: csrf.clone(),
        email,
        error,
        password_login: state.dashboard.password_login,
        sso: state.sso.as_ref().map(|s| s.name().to_owned()),
        brand: super::brand::Brand::of(&state.dashboard),
    });
    *r.status_mut() = status;
    let secure = super::session::served_securely(state);
    let cookie = super::session::cookie_line(LOGIN_CSRF, &csrf, "/login", "Strict", 3600, secure);
    r.headers_mut()
        .append(header::SET_COOKIE, cookie.parse().expect("valid cookie"));
    r
}

pub async fn login_page(State(state): State<AppState>) -> Response {
    login_form(&state, String::new(), None, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    csrf: Option<String>,
}

pub async fn login(
    State(state): State<AppState>,
    parts: Parts,
    DashForm(f): DashForm<LoginForm>,
) -> Response {
    if !state.dashboard.password_login {
        return login_form(
            &state,
            String::new(),
            Some("Signing in with a password is turned off here.".into()),
            StatusCode::FORBIDDEN,
        );
    }
    let expected = session::cookie_value(&parts.headers, LOGIN_CSRF);
    if expected.is_none() || expected != f.csrf {
        return forbidden("This sign-in form has expired. Reload the page and try again.");
    }
    // No account has a longer email or password: refused before anything is looked up,
    // hashed or remembered by the throttle (and not echoed back).
    let email = f.email.trim().to_lowercase();
    if email.len() > session::MAX_EMAIL_BYTES || f.password.chars().count() > MAX_PASSWORD_CHARS {
        return login_form(
            &state,
            String::new(),
            Some("Email or password is too long.".into()),
            StatusCode::BAD_REQUEST,
        );
    }
    let ip = client_ip(&parts, &state);
    if let Err(wait) = state.throttle.allowed(&email, ip) {
        return login_form(
            &state,
            email,
            Some(format!(
                "Too many failed attempts. {}",
                session::try_again_in(wait)
            )),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let user = match state.store.user_by_email(&email).await {
        Ok(u) => u,
        Err(e) => return sign_in_unavailable(&state, email, e),
    };
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let password = Secret::new(f.password);
    // Verify even without a user, so timing does not tell which emails exist.
    let ok = tokio::task::spawn_blocking(move || match hash {
        Some(h) => password::verify_blocking(&password, &h),
        None => {
            let _ = password::hash_blocking(&password);
            false
        }
    })
    .await
    .unwrap_or(false);
    let user = match user {
        Some(u) if ok && u.is_active() => u,
        _ => {
            state.throttle.failed(&email, ip);
            return login_form(
                &state,
                email,
                Some("Email or password is incorrect.".into()),
                StatusCode::UNAUTHORIZED,
            );
        }
    };
    state.throttle.succeeded(&email);
    let workspaces = match state.store.user_workspaces(&user.id).await {
        Ok(w) => w,
        Err(e) => return sign_in_unavailable(&state, email, e),
    };
    let Some((workspace_id, _, _)) = workspaces.into_iter().next() else {
        return login_form(
            &state,
            email,
            Some("Your account is not a member of any workspace yet.".into()),
            StatusCode::FORBIDDEN,
        );
    };
    match session::start(&state, &user.id, &workspace_id, "/keys").await {
        Ok(r) => r,
        Err(e) => sign_in_unavailable(&state, email, e),
    }
}

/// Sign-in when the database fails: a 503 (out of reach) or 500 that says so, not "wrong
/// password".
fn sign_in_unavailable(state: &AppState, email: String, e: latchkey_store::StoreError) -> Response {
    tracing::error!(error = %e, "sign-in could not read the database");
    let status = if e.is_unavailable() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    login_form(
        state,
        email,
        Some("Signing in is not possible right now. Try again in a moment.".into()),
        status,
    )
}

pub async fn logout(State(state): State<AppState>, user: DashUser) -> Response {
    let _ = state.store.delete_session(&user.session.id).await;
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        session::session_cookie(&state, "", 0)
            .parse()
            .expect("valid cookie"),
    );
    r
}

#[derive(Deserialize)]
pub struct SwitchForm {
    workspace_id: String,
}

pub async fn switch_workspace(
    State(state): State<AppState>,
    user: DashUser,
    DashForm(f): DashForm<SwitchForm>,
) -> Response {
    let mine = state
        .store
        .user_workspaces(user.caller.user_id())
        .await
        .unwrap_or_default();
    if mine.iter().any(|(id, _, _)| *id == f.workspace_id) {
        let _ = state
            .store
            .switch_session_workspace(&user.session.id, &f.workspace_id)
            .await;
    }
    Redirect::to("/keys").into_response()
}

// ---------------------------------------------------------------------------------------------
// Limits and usage: the parts a key's page and a member's share

/// What is set, and the form that changes the one limit a page edits and the credits.
pub struct LimitsSection {
    pub action: String,
    /// The name of the limit the form edits; the others are left as they are.
    pub edits: &'static str,
    pub rows: Vec<LimitRow>,
    pub credits_remaining: String,
    pub refill: String,
    pub can_manage: bool,
    /// What the form's fields show: the settings, or what was typed when it was refused.
    pub fields: LimitFields,
    pub windows: Vec<(String, String, bool)>,
    pub refills: Vec<(String, String, bool)>,
    /// The settings as the form showed them (see [`LimitsForm::change`]).
    pub shown_ratelimit: String,
    pub shown_credits: String,
}

impl LimitsSection {
    pub(super) fn new(
        action: String,
        edits: &'static str,
        set: &[NamedLimit],
        credits: Option<&Credits>,
        typed: Option<LimitFields>,
        can_manage: bool,
    ) -> Self {
        let current = LimitFields::showing(set.iter().find(|l| l.name == edits), credits);
        let fields = typed.unwrap_or_else(|| current.clone());
        Self {
            action,
            edits,
            rows: set.iter().map(LimitRow::from).collect(),
            credits_remaining: credits
                .map_or_else(|| "unlimited".into(), |c| c.remaining.to_string()),
            refill: match credits {
                Some(c) => crate::words::refill_words(c.refill.as_ref(), crate::now()),
                None => String::new(),
            },
            can_manage,
            windows: fields.windows(),
            refills: fields.refills(),
            shown_ratelimit: current.limit_state(),
            shown_credits: current.credits_state(),
            fields,
        }
    }
}

/// The usage chart and the numbers it draws, readable without the picture.
pub struct UsageSection {
    pub svg: String,
    pub valid: i64,
    pub refused: Vec<(String, i64)>,
    pub credits_spent: i64,
}

impl UsageSection {
    fn of(points: &[Point]) -> Self {
        let t = Totals::of(points);
        Self {
            svg: chart::svg(points),
            valid: t.valid,
            credits_spent: t.credits_spent,
            refused: t.refused.into_iter().collect(),
        }
    }
}

/// The usage section's data: `None` when the caller may not read it (the page says so).
pub(super) fn usage_section(
    r: Result<Vec<Point>, ApiError>,
) -> Result<Option<UsageSection>, ApiError> {
    Ok(listed(r)?.map(|p| UsageSection::of(&p)))
}

/// The API's default window: the last 24 hours by hour.
pub(super) fn last_day() -> Result<Span, ApiError> {
    Span::parse(&Window::default(), crate::now())
}

/// A limits form as submitted: the fields, and the settings they showed when the page was
/// drawn.
#[derive(Deserialize)]
pub struct LimitsForm {
    #[serde(flatten)]
    pub(super) fields: LimitFields,
    shown_ratelimit: Option<String>,
    shown_credits: Option<String>,
}

/// What a limits form changes; `None` for what it leaves as it is.
pub(super) struct LimitsChange {
    /// The edited limit, `Some(None)` to remove it.
    pub(super) limit: Option<Option<NamedLimit>>,
    /// The credits, `Some(None)` for unlimited.
    pub(super) credits: Option<Option<Credits>>,
}

impl LimitsForm {
    /// Only what the person changed is sent: the credits field holds the balance as the page
    /// showed it, and sending it back with a new rate limit would give back every credit spent
    /// since.
    pub(super) fn change(&self, name: &str) -> Result<LimitsChange, ApiError> {
        let f = &self.fields;
        let changed = |shown: &Option<String>, now: String| shown.as_deref() != Some(&now);
        Ok(LimitsChange {
            limit: changed(&self.shown_ratelimit, f.limit_state())
                .then(|| f.limit(name))
                .transpose()?,
            credits: changed(&self.shown_credits, f.credits_state())
                .then(|| f.credits())
                .transpose()?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Members and roles

#[derive(Template)]
#[template(path = "members.html")]
struct MembersPage {
    nav: Nav,
    members: Vec<MemberView>,
    roles: Vec<RoleView>,
    /// Per role (in `roles`' order), what its permissions allow, in words.
    role_words: Vec<Vec<String>>,
    errors: Vec<String>,
}

/// A permission as a person reads it: Latchkey's own in words, the provider's as written.
pub fn permission_words(p: &str) -> String {
    use latchkey_core::permission::{KEYS_MANAGE_ALL, KEYS_MANAGE_OWN, LEAKS_REPORT, VERIFY};
    match p {
        // `*` does not reach Latchkey's own namespace (see `latchkey_core::permission`).
        "*" => "every permission of your API (none of Latchkey's own)".into(),
        "latchkey:*" => "everything in Latchkey (keys, members, audit log, verification)".into(),
        KEYS_MANAGE_OWN => "create and manage their own API keys and tokens".into(),
        KEYS_MANAGE_ALL => "manage everyone's API keys and tokens in this workspace".into(),
        MEMBERS_MANAGE => "manage members, roles and workspace settings".into(),
        AUDIT_READ => "read the audit log".into(),
        VERIFY => "verify credentials for your services (POST /v1/verify)".into(),
        LEAKS_REPORT => {
            "report leaked API keys of any workspace, which revokes them (POST /v1/leaks)".into()
        }
        other => format!("your API: {other}"),
    }
}

async fn members_view(state: &AppState, user: &DashUser, errors: Vec<String>) -> Response {
    let c = &user.caller;
    if !c.allows(MEMBERS_MANAGE) {
        return not_allowed(
            state,
            user,
            "Managing members and roles needs latchkey:members:manage in this workspace.",
        )
        .await;
    }
    let ws = c.workspace_id().to_owned();
    let page = PageParams {
        limit: Some(500),
        cursor: None,
    };
    let members = match service::workspaces::list_members(state, c, &ws, &page).await {
        Ok(page) => page.data.iter().map(MemberView::from).collect(),
        Err(e) => return load_failed(state, user, "members", e).await,
    };
    let roles: Vec<RoleView> = match service::workspaces::list_roles(state, c, &ws).await {
        Ok(roles) => roles.iter().map(RoleView::from).collect(),
        Err(e) => return load_failed(state, user, "members", e).await,
    };
    let role_words = roles
        .iter()
        .map(|r| r.permissions.iter().map(|p| permission_words(p)).collect())
        .collect();
    render(MembersPage {
        nav: nav(state, user, "members").await,
        members,
        roles,
        role_words,
        errors,
    })
}

pub async fn members_page(State(state): State<AppState>, user: DashUser) -> Response {
    members_view(&state, &user, vec![]).await
}

async fn after_members(state: &AppState, user: &DashUser, r: Result<String, ApiError>) -> Response {
    match r {
        Ok(done) => flash::redirect(state, user, "/members", Flash::ok(done)),
        Err(ApiError::Forbidden(_)) if !user.caller.allows(MEMBERS_MANAGE) => {
            not_allowed(
                state,
                user,
                "Managing members needs latchkey:members:manage.",
            )
            .await
        }
        Err(e) => {
            // The page again, saying what went wrong, with the API's status (409 for the last
            // admin, 422 for a bad role): what happened is visible to the browser and to tests.
            with_status(members_view(state, user, messages(&e)).await, e.status())
        }
    }
}

#[derive(Deserialize)]
pub struct RoleForm {
    role: String,
}

pub async fn change_role(
    State(state): State<AppState>,
    user: DashUser,
    Path(user_id): Path<String>,
    DashForm(f): DashForm<RoleForm>,
) -> Response {
    let c = &user.caller;
    let was = service::workspaces::get_member(&state, c, c.workspace_id(), &user_id)
        .await
        .map(|m| m.role)
        .ok();
    let req = PutMemberRequest {
        role: f.role,
        ratelimits: None,
        credits: None,
    };
    let r = service::workspaces::put_member(&state, c, c.workspace_id(), &user_id, &req)
        .await
        .map(|p| match was {
            Some(was) if was == p.member.role => {
                format!("Nothing changed: {} is already {was}.", p.member.email)
            }
            Some(was) => format!("{} is now {} (was {was}).", p.member.email, p.member.role),
            None => format!("{} is now {}.", p.member.email, p.member.role),
        });
    after_members(&state, &user, r).await
}

pub async fn remove_member(
    State(state): State<AppState>,
    user: DashUser,
    Path(user_id): Path<String>,
) -> Response {
    let c = &user.caller;
    let who = service::workspaces::get_member(&state, c, c.workspace_id(), &user_id)
        .await
        .map_or_else(|_| user_id.clone(), |m| m.email);
    let r = service::workspaces::remove_member(&state, c, c.workspace_id(), &user_id)
        .await
        .map(|()| format!("{who} was removed from {}.", c.resolved.workspace.name));
    after_members(&state, &user, r).await
}

#[derive(Deserialize)]
pub struct AddMemberForm {
    email: String,
    name: Option<String>,
    password: Option<String>,
    role: String,
}

/// Adds an existing user by email, or provisions a new one first.
pub async fn add_member(
    State(state): State<AppState>,
    user: DashUser,
    DashForm(f): DashForm<AddMemberForm>,
) -> Response {
    let c = &user.caller;
    let email = f.email.trim().to_lowercase();
    let new_user = CreateUserRequest {
        name: f
            .name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| email.clone()),
        email,
        password: f.password.filter(|p| !p.is_empty()),
        instance_role: None,
        is_instance_admin: None,
    };
    let role = PutMemberRequest {
        role: f.role,
        ratelimits: None,
        credits: None,
    };
    let r = service::workspaces::add_member_by_email(&state, c, c.workspace_id(), new_user, &role)
        .await
        .map(|p| match p.added {
            true => format!("{} added as {}.", p.member.email, p.member.role),
            false => format!("{} is now {}.", p.member.email, p.member.role),
        });
    after_members(&state, &user, r).await
}

#[derive(Deserialize)]
pub struct EditRoleForm {
    permissions: String,
}

pub async fn edit_role(
    State(state): State<AppState>,
    user: DashUser,
    Path(role): Path<String>,
    DashForm(f): DashForm<EditRoleForm>,
) -> Response {
    let c = &user.caller;
    let req = PutRoleRequest {
        permissions: lines(&f.permissions),
    };
    let r = service::workspaces::put_role(&state, c, c.workspace_id(), &role, &req)
        .await
        .map(|r| format!("Role “{}” saved.", r.name));
    after_members(&state, &user, r).await
}

// ---------------------------------------------------------------------------------------------
// A member's page

#[derive(Template)]
#[template(path = "member.html")]
struct MemberPage {
    nav: Nav,
    member: MemberView,
    limits: LimitsSection,
    usage: Option<UsageSection>,
    errors: Vec<String>,
}

async fn member_view(
    state: &AppState,
    user: &DashUser,
    user_id: &str,
    typed: Option<LimitFields>,
    errors: Vec<String>,
) -> Response {
    let c = &user.caller;
    if !c.allows(MEMBERS_MANAGE) {
        return not_allowed(
            state,
            user,
            "Managing members and roles needs latchkey:members:manage in this workspace.",
        )
        .await;
    }
    let ws = c.workspace_id().to_owned();
    let member = match service::workspaces::get_member(state, c, &ws, user_id).await {
        Ok(m) => m,
        Err(ApiError::NotFound) => return not_found(state, user).await,
        Err(e) => return load_failed(state, user, "member", e).await,
    };
    let points = match last_day() {
        Ok(span) => {
            service::usage::of_workspace(state, c, Some(&ws), Some(&member.user_id), span).await
        }
        Err(e) => Err(e),
    };
    let usage = match usage_section(points) {
        Ok(u) => u,
        Err(e) => return load_failed(state, user, "member", e).await,
    };
    let limits = LimitsSection::new(
        format!("/members/{}/limits", member.user_id),
        MEMBER_LIMIT,
        &member.ratelimits,
        member.credits.as_ref(),
        typed,
        true,
    );
    let mut member = MemberView::from(&member);
    member.created_at = short_time(&member.created_at);
    render(MemberPage {
        nav: nav(state, user, "members").await,
        member,
        limits,
        usage,
        errors,
    })
}

pub async fn member_page(
    State(state): State<AppState>,
    user: DashUser,
    Path(user_id): Path<String>,
) -> Response {
    member_view(&state, &user, &user_id, None, vec![]).await
}

async fn member_refused(
    state: &AppState,
    user: &DashUser,
    user_id: &str,
    typed: LimitFields,
    e: ApiError,
) -> Response {
    with_status(
        member_view(state, user, user_id, Some(typed), messages(&e)).await,
        e.status(),
    )
}

/// The member's limit named [`MEMBER_LIMIT`] and their credits:
/// `PUT /v1/workspaces/{id}/members/{user_id}` with the role they have now.
pub async fn save_member_limits(
    State(state): State<AppState>,
    user: DashUser,
    Path(user_id): Path<String>,
    DashForm(f): DashForm<LimitsForm>,
) -> Response {
    let c = &user.caller;
    let ws = c.workspace_id().to_owned();
    let member = match service::workspaces::get_member(&state, c, &ws, &user_id).await {
        Ok(m) => m,
        Err(e) => return member_refused(&state, &user, &user_id, f.fields, e).await,
    };
    let change = match f.change(MEMBER_LIMIT) {
        Ok(change) => change,
        Err(e) => return member_refused(&state, &user, &user_id, f.fields, e).await,
    };
    if change.limit.is_none() && change.credits.is_none() {
        let to = format!("/members/{}", member.user_id);
        return flash::redirect(&state, &user, &to, Flash::ok("Nothing changed."));
    }
    let req = PutMemberRequest {
        role: member.role.clone(),
        ratelimits: change
            .limit
            .map(|l| limits::replace_limit(&member.ratelimits, MEMBER_LIMIT, l)),
        credits: change.credits,
    };
    match service::workspaces::put_member(&state, c, &ws, &member.user_id, &req).await {
        Ok(_) => {
            let to = format!("/members/{}", member.user_id);
            flash::redirect(&state, &user, &to, Flash::ok("Limits and credits saved."))
        }
        Err(e) => member_refused(&state, &user, &user_id, f.fields, e).await,
    }
}

// ---------------------------------------------------------------------------------------------
// Workspace settings

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    nav: Nav,
    require_pair: bool,
    publishable_permissions: String,
    errors: Vec<String>,
}

async fn settings_view(state: &AppState, user: &DashUser, errors: Vec<String>) -> Response {
    if !user.caller.allows(MEMBERS_MANAGE) {
        return not_allowed(
            state,
            user,
            "Workspace settings need latchkey:members:manage.",
        )
        .await;
    }
    let c = &user.caller;
    let ws = match service::workspaces::get(state, c, c.workspace_id()).await {
        Ok(ws) => ws,
        Err(e) => return load_failed(state, user, "settings", e).await,
    };
    render(SettingsPage {
        nav: nav(state, user, "settings").await,
        require_pair: ws.require_pair,
        publishable_permissions: ws.publishable_permissions.to_strings().join("\n"),
        errors,
    })
}

pub async fn settings_page(State(state): State<AppState>, user: DashUser) -> Response {
    settings_view(&state, &user, vec![]).await
}

#[derive(Deserialize)]
pub struct SettingsForm {
    require_pair: Option<String>,
    publishable_permissions: String,
}

pub async fn save_settings(
    State(state): State<AppState>,
    user: DashUser,
    DashForm(f): DashForm<SettingsForm>,
) -> Response {
    let c = &user.caller;
    let req = UpdateWorkspaceRequest {
        name: None,
        require_pair: Some(f.require_pair.is_some()),
        publishable_permissions: Some(lines(&f.publishable_permissions)),
        max_key_ttl_seconds: None,
    };
    match service::workspaces::update(&state, c, c.workspace_id(), &req).await {
        Ok(_) => flash::redirect(&state, &user, "/settings", Flash::ok("Settings saved.")),
        Err(e) => settings_view(&state, &user, messages(&e)).await,
    }
}

// ---------------------------------------------------------------------------------------------
// Account

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    nav: Nav,
    errors: Vec<String>,
}

pub async fn account_page(State(state): State<AppState>, user: DashUser) -> Response {
    render(AccountPage {
        nav: nav(&state, &user, "account").await,
        errors: vec![],
    })
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: String,
    new_password: String,
    confirm_password: String,
}

pub async fn change_password(
    State(state): State<AppState>,
    user: DashUser,
    DashForm(f): DashForm<PasswordForm>,
) -> Response {
    let fail = |state: AppState, user: DashUser, msg: &str| {
        let msg = msg.to_owned();
        async move {
            render(AccountPage {
                nav: nav(&state, &user, "account").await,
                errors: vec![msg],
            })
        }
    };
    // The same allowance as sign-in, for the same account: a stolen session must not be a way
    // to guess the password (and the two must not add up to twice the guesses).
    let account = user.caller.resolved.principal.email.to_lowercase();
    let ip = user.caller.ip;
    if let Err(wait) = state.throttle.allowed(&account, ip) {
        let message = format!("Too many wrong passwords. {}", session::try_again_in(wait));
        let mut r = fail(state, user, &message).await;
        *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        return r;
    }
    let current = match state.store.get_user(user.caller.user_id()).await {
        Ok(u) => u.password_hash,
        Err(e) => return load_failed(&state, &user, "account", e.into()).await,
    };
    let given = Secret::new(f.current_password);
    let ok = tokio::task::spawn_blocking(move || {
        current.is_some_and(|h| password::verify_blocking(&given, &h))
    })
    .await
    .unwrap_or(false);
    if !ok {
        state.throttle.failed(&account, ip);
        return fail(state, user, "The current password is not right.").await;
    }
    state.throttle.succeeded(&account);
    if f.new_password != f.confirm_password {
        return fail(state, user, "The new passwords do not match.").await;
    }
    let mut v = latchkey_core::Validator::new();
    v.password("new_password", &f.new_password);
    if v.finish().is_err() {
        return fail(
            state,
            user,
            "The new password must be 12 to 1024 characters.",
        )
        .await;
    }
    let Ok(hash) = password::hash(Secret::new(f.new_password)).await else {
        return fail(state, user, "Could not change the password.").await;
    };
    if state
        .store
        .set_password(user.caller.user_id(), &hash, &user.session.id)
        .await
        .is_err()
    {
        return fail(state, user, "Could not change the password.").await;
    }
    flash::redirect(
        &state,
        &user,
        "/account",
        Flash::ok("Password changed. Your other sessions were signed out."),
    )
}
