//! `GET /v1/changes` (SPEC §10.6): the change stream, as Server-Sent Events. A remote verifier
//! (the tower layer or the gateway in remote mode) caches verification answers and follows this
//! stream to drop the ones a change made wrong, as a node follows the change log.
//!
//! Events (`data` is JSON):
//! - `ready`: the stream is live (after any replay); from now on every change arrives.
//! - `change`: `{seq, kind, …ids}` with `kind` one of `key` (`key_id`, `workspace_id`), `token`
//!   (`token_id`, `key_id`, `workspace_id`), `principal` (`workspace_id`, `user_id`),
//!   `workspace` (`workspace_id`), `user` (`user_id`).
//! - `reset`: drop every cached answer (the client was too far behind, fell behind the stream,
//!   or a change could not be described); the stream goes on from here.
//!
//! Every event's `id` is a position to resume from (`Last-Event-ID`, or `?after=`): the serving
//! node's change-log floor, which may repeat a few changes on resumption but never skips one
//! (see `latchkey_engine::feed`). Scope is that of `POST /v1/verify`: a credential that
//! verifies everywhere sees every change; any other `latchkey:verify` holder only its own
//! workspace's. The stream ends when the caller's own credential stops being valid.

use crate::auth::{Caller, Presented};
use crate::error::responses::Authenticated;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use latchkey_core::permission::VERIFY;
use latchkey_core::{Demand, Permission};
use latchkey_proto::changes::{StreamMarker, CHANGE, READY, RESET};
use latchkey_proto::{ChangeEvent, ChangeKind};
use latchkey_store::{Change, LoggedChange};
use serde::Deserialize;
use std::borrow::Cow;
use std::convert::Infallible;
use std::net::IpAddr;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use utoipa::IntoParams;

/// More entries than this to replay and the client is told to start over instead.
const MAX_REPLAY: i64 = 10_000;
const PAGE: i64 = 1000;
/// How often the caller's own credential is checked again without a change naming it (its
/// expiry passes without a change).
const RECHECK_EVERY: Duration = Duration::from_secs(30);
/// A comment line this often keeps proxies from closing an idle stream and tells the client
/// the connection is alive.
const KEEP_ALIVE: Duration = Duration::from_secs(5);

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ChangesParams {
    /// Resume after this position (the `id` of the last event received); `Last-Event-ID`
    /// wins when both are given. Without either the stream starts live, with no replay.
    pub after: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    Everywhere,
    Workspace(String),
}

impl Scope {
    fn includes(&self, workspace_id: &str) -> bool {
        match self {
            Scope::Everywhere => true,
            Scope::Workspace(w) => w == workspace_id,
        }
    }
}

/// What one log entry means for a subscriber.
enum Described {
    Event(ChangeEvent),
    /// Not in the subscriber's scope, or nothing a remote cache holds.
    Nothing,
    /// Could not be described (unknown kind, or the database could not say): start over.
    Reset,
}

#[utoipa::path(get, path = "/v1/changes", tag = "verify", params(ChangesParams),
    responses((status = 200, description = "A `text/event-stream` of `ready`, `change` and `reset` events", content_type = "text/event-stream", body = String),
        Authenticated))]
pub async fn changes(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<ChangesParams>,
) -> Result<Response, ApiError> {
    caller.require(VERIFY)?;
    let resume = match headers.get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    ApiError::bad_request("Last-Event-ID must be a position (a number)")
                })?,
        ),
        None => params.after,
    };
    if resume.is_some_and(|n| n < 0) {
        return Err(ApiError::validation("after", "must be 0 or more"));
    }
    let scope = if caller.verifies_everywhere() {
        Scope::Everywhere
    } else {
        Scope::Workspace(caller.workspace_id().to_owned())
    };
    let own = OwnCredential::of(&headers, &caller)?;
    // Subscribed before anything is read, so nothing applied from here on can be missed.
    let (live, floor) = state.engine.feed.subscribe();
    let (tx, rx) = mpsc::channel::<Event>(64);
    tokio::spawn(stream(state, scope, own, resume, live, floor, tx));
    let events = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|e| (Ok::<_, Infallible>(e), rx))
    });
    let mut resp = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("alive"))
        .into_response();
    // Proxies (nginx) buffer responses unless told not to; a buffered stream is a late one.
    resp.headers_mut()
        .insert("x-accel-buffering", header::HeaderValue::from_static("no"));
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}

/// The caller's credential, kept to check it again while the stream runs.
struct OwnCredential {
    key: Option<String>,
    token: Option<String>,
    key_id: String,
    user_id: String,
    workspace_id: String,
    origin: Option<String>,
    ip: Option<IpAddr>,
}

impl OwnCredential {
    fn of(headers: &HeaderMap, caller: &Caller) -> Result<Self, ApiError> {
        let p = crate::auth::presented_credentials(headers)?;
        Ok(Self {
            key: p.key.map(Cow::into_owned),
            token: p.token.map(Cow::into_owned),
            key_id: caller.resolved.key.id.clone(),
            user_id: caller.user_id().to_owned(),
            workspace_id: caller.workspace_id().to_owned(),
            origin: headers
                .get(header::ORIGIN)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            ip: caller.ip,
        })
    }

    /// Whether a change may have altered this credential's standing.
    fn touched_by(&self, e: &ChangeEvent) -> bool {
        e.key_id.as_deref() == Some(&self.key_id)
            || e.user_id.as_deref() == Some(&self.user_id)
            || (e.kind == ChangeKind::Workspace
                && e.workspace_id.as_deref() == Some(&self.workspace_id))
            || e.token_id.is_some()
    }

    async fn still_valid(&self, state: &AppState) -> bool {
        let presented = Presented {
            key: self.key.as_deref().map(Cow::Borrowed),
            token: self.token.as_deref().map(Cow::Borrowed),
        };
        let verify = [Permission::parse(VERIFY).expect("a valid permission")];
        let demand = Demand {
            permissions: &verify,
            environment: None,
            origin: self.origin.as_deref(),
            ip: self.ip,
            ratelimits: &[],
            cost: None,
            within_workspace: None,
        };
        // An outage is no verdict: the stream then ends too, and the client reconnects. The
        // stream was charged when it opened; staying open costs nothing more.
        state.engine.recheck(&presented, &demand).await.is_ok()
    }
}

async fn stream(
    state: AppState,
    scope: Scope,
    own: OwnCredential,
    resume: Option<i64>,
    mut live: broadcast::Receiver<LoggedChange>,
    floor: i64,
    tx: mpsc::Sender<Event>,
) {
    let mut position = floor;
    if let Some(after) = resume {
        position = position.max(after);
        match replay(&state, &scope, after, &tx, position).await {
            Ok(true) => {}
            Ok(false) => return, // the client left
            Err(reason) => {
                if !send(&tx, reset(position, reason)).await {
                    return;
                }
            }
        }
    }
    if !send(&tx, marker(READY, position, None)).await {
        return;
    }
    let mut recheck = tokio::time::interval(RECHECK_EVERY);
    recheck.tick().await; // the first tick is immediate
    let closing = shutting_down(state.closing.subscribe());
    tokio::pin!(closing);
    loop {
        let entry = tokio::select! {
            r = live.recv() => r,
            // The server is shutting down: the client reconnects (to another node).
            _ = &mut closing => return,
            _ = recheck.tick() => {
                if !own.still_valid(&state).await {
                    return;
                }
                continue;
            }
            _ = tx.closed() => return,
        };
        position = position.max(state.engine.feed.floor());
        let event = match entry {
            Ok(entry) => match describe(&state, &scope, &entry).await {
                Described::Event(e) => {
                    if own.touched_by(&e) && !own.still_valid(&state).await {
                        return;
                    }
                    change_event(position, &e)
                }
                Described::Nothing => continue,
                Described::Reset => reset(position, "undescribed_change"),
            },
            Err(broadcast::error::RecvError::Lagged(_)) => reset(position, "fell_behind"),
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if !send(&tx, event).await {
            return;
        }
    }
}

/// Resolves once the server starts shutting down.
async fn shutting_down(mut closing: tokio::sync::watch::Receiver<bool>) {
    loop {
        if *closing.borrow_and_update() {
            return;
        }
        if closing.changed().await.is_err() {
            return; // the server is gone
        }
    }
}

/// Sends the log's entries after `after`; `Ok(false)` when the client left, `Err(reason)` when
/// it must start over instead.
async fn replay(
    state: &AppState,
    scope: &Scope,
    after: i64,
    tx: &mpsc::Sender<Event>,
    position: i64,
) -> Result<bool, &'static str> {
    let store = &state.store;
    if after > 0 {
        // Resuming from a position whose entry has been pruned: what came between is gone.
        let oldest = store.oldest_change().await.map_err(|_| "unavailable")?;
        if oldest.is_none_or(|o| o > after) {
            return Err("too_far_behind");
        }
    }
    let pending = store
        .count_changes(after, i64::MAX)
        .await
        .map_err(|_| "unavailable")?;
    if pending > MAX_REPLAY {
        return Err("too_far_behind");
    }
    let mut from = after;
    loop {
        let page = store
            .changes_after(from, None, PAGE)
            .await
            .map_err(|_| "unavailable")?;
        let full = page.len() as i64 == PAGE;
        for entry in &page {
            let event = match describe(state, scope, entry).await {
                Described::Event(e) => change_event(position, &e),
                Described::Nothing => continue,
                Described::Reset => return Err("undescribed_change"),
            };
            if !send(tx, event).await {
                return Ok(false);
            }
        }
        from = page.last().map_or(from, |e| e.seq);
        if !full {
            return Ok(true);
        }
    }
}

/// The ids of a change, when the subscriber may see it.
async fn describe(state: &AppState, scope: &Scope, entry: &LoggedChange) -> Described {
    let Some(change) = &entry.change else {
        return Described::Reset;
    };
    let seq = entry.seq;
    let store = &state.store;
    let event = match change {
        Change::Key(hash) => match store.key_by_hash(hash).await {
            Ok(Some(k)) => ChangeEvent {
                key_id: Some(k.id),
                workspace_id: Some(k.workspace_id),
                ..ChangeEvent::new(seq, ChangeKind::Key)
            },
            _ => return Described::Reset,
        },
        Change::Token(id) => match store.get_token(id).await {
            Ok(t) => ChangeEvent {
                token_id: Some(t.id),
                key_id: Some(t.key_id),
                workspace_id: Some(t.workspace_id),
                ..ChangeEvent::new(seq, ChangeKind::Token)
            },
            _ => return Described::Reset,
        },
        Change::Principal {
            workspace_id,
            user_id,
        } => ChangeEvent {
            workspace_id: Some(workspace_id.clone()),
            user_id: Some(user_id.clone()),
            ..ChangeEvent::new(seq, ChangeKind::Principal)
        },
        Change::Workspace(w) => ChangeEvent {
            workspace_id: Some(w.clone()),
            ..ChangeEvent::new(seq, ChangeKind::Workspace)
        },
        Change::User(u) => {
            if let Scope::Workspace(w) = scope {
                // A user spans workspaces: shown only to the workspaces it belongs to.
                match store.is_member(w, u).await {
                    Ok(true) => {}
                    Ok(false) => return Described::Nothing,
                    Err(_) => return Described::Reset,
                }
            }
            return Described::Event(ChangeEvent {
                user_id: Some(u.clone()),
                ..ChangeEvent::new(seq, ChangeKind::User)
            });
        }
        // Remote verifiers ask the server about tokens; they hold no signing keys.
        Change::SigningKeys => return Described::Nothing,
    };
    match &event.workspace_id {
        Some(w) if !scope.includes(w) => Described::Nothing,
        _ => Described::Event(event),
    }
}

fn change_event(position: i64, e: &ChangeEvent) -> Event {
    Event::default()
        .event(CHANGE)
        .id(position.to_string())
        .data(serde_json::to_string(e).expect("serialises"))
}

fn marker(name: &'static str, position: i64, reason: Option<&str>) -> Event {
    let data = StreamMarker {
        position,
        reason: reason.map(str::to_owned),
    };
    Event::default()
        .event(name)
        .id(position.to_string())
        .data(serde_json::to_string(&data).expect("serialises"))
}

fn reset(position: i64, reason: &str) -> Event {
    marker(RESET, position, Some(reason))
}

async fn send(tx: &mpsc::Sender<Event>, e: Event) -> bool {
    tx.send(e).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workspace_scope_sees_only_its_workspace() {
        let s = Scope::Workspace("ws_a".into());
        assert!(s.includes("ws_a"));
        assert!(!s.includes("ws_b"));
        assert!(Scope::Everywhere.includes("ws_b"));
    }

    #[test]
    fn the_callers_own_standing_is_rechecked_on_changes_that_name_it() {
        let own = OwnCredential {
            key: Some("k".into()),
            token: None,
            key_id: "key_1".into(),
            user_id: "usr_1".into(),
            workspace_id: "ws_1".into(),
            origin: None,
            ip: None,
        };
        let key = |id: &str| ChangeEvent {
            key_id: Some(id.into()),
            workspace_id: Some("ws_1".into()),
            ..ChangeEvent::new(1, ChangeKind::Key)
        };
        assert!(own.touched_by(&key("key_1")));
        assert!(!own.touched_by(&key("key_2")));
        let ws = ChangeEvent {
            workspace_id: Some("ws_1".into()),
            ..ChangeEvent::new(1, ChangeKind::Workspace)
        };
        assert!(own.touched_by(&ws));
        let principal = ChangeEvent {
            workspace_id: Some("ws_1".into()),
            user_id: Some("usr_1".into()),
            ..ChangeEvent::new(1, ChangeKind::Principal)
        };
        assert!(own.touched_by(&principal));
    }
}
