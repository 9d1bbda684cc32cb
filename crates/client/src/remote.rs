//! The remote verifier: `POST /v1/verify` answers, cached locally and kept right by the change
//! stream (`GET /v1/changes`, SPEC §10.6).
//!
//! Rules, in the order they matter:
//! - An answer is cached only while the stream is live (it said `ready` and the connection is
//!   open), and only if no change arrived while it was being fetched; a change drops every
//!   cached answer it may have made wrong (by key, token, member, workspace or user).
//! - While the stream is down, cached answers serve for [`RemoteOptions::serve_stale_for`]
//!   after it was last heard from, then no longer: every request asks the server, and an
//!   unreachable server fails closed ([`ClientError::Unavailable`]).
//! - On reconnecting, the stream resumes from its last position and replays what was missed;
//!   when that is impossible it says `reset` and every cached answer is dropped.

use crate::sse::SseParser;
use crate::{Client, ClientError};
use latchkey_proto::changes::{StreamMarker, CHANGE, READY, RESET};
use latchkey_proto::{ChangeEvent, ChangeKind, VerifyAnswer, VerifyRequest};
use moka::sync::Cache;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a [`RemoteVerifier`] caches and follows.
#[derive(Debug, Clone, Copy)]
pub struct RemoteOptions {
    /// Answers held (each is one credential with one request context).
    pub capacity: u64,
    /// The longest an answer is kept at all, whatever the stream says.
    pub ttl: Duration,
    /// How long cached answers keep serving once the change stream is lost (the server is
    /// down or unreachable). A revocation made meanwhile reaches this verifier only when the
    /// stream is back or this time has passed: the bound on staleness in an outage.
    pub serve_stale_for: Duration,
    /// The wait between attempts to reconnect the stream.
    pub reconnect_after: Duration,
    /// No byte on the stream for this long (the server sends a keep-alive every 5 s) and it
    /// is taken for lost.
    pub stream_silence: Duration,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        Self {
            capacity: 100_000,
            ttl: Duration::from_secs(300),
            serve_stale_for: Duration::from_secs(30),
            reconnect_after: Duration::from_millis(500),
            stream_silence: Duration::from_secs(15),
        }
    }
}

#[derive(Clone)]
struct Cached {
    answer: Arc<VerifyAnswer>,
    /// Asked with a key and a token: the answer names the token's key only, so any key change
    /// in its workspace drops it.
    pair: bool,
}

struct Inner {
    client: Client,
    cache: Cache<[u8; 32], Cached>,
    /// Bumped by every change received: an answer fetched across a change is not cached.
    generation: AtomicU64,
    /// The stream is open and has said `ready`.
    live: AtomicBool,
    /// When the stream last said anything (while live).
    last_heard: Mutex<Option<Instant>>,
    options: RemoteOptions,
}

/// Verifies through a Latchkey server, with a local cache. Cheap to clone; the stream follower
/// stops when the last clone is dropped. Needs a Tokio runtime.
#[derive(Clone)]
pub struct RemoteVerifier {
    inner: Arc<Inner>,
    _follower: Arc<AbortOnDrop>,
}

impl RemoteVerifier {
    pub fn new(client: Client, options: RemoteOptions) -> Self {
        let inner = Arc::new(Inner {
            client,
            cache: Cache::builder()
                .max_capacity(options.capacity)
                .time_to_live(options.ttl)
                .support_invalidation_closures()
                .build(),
            generation: AtomicU64::new(0),
            live: AtomicBool::new(false),
            last_heard: Mutex::new(None),
            options,
        });
        let follower = tokio::spawn(follow(inner.clone()));
        Self {
            inner,
            _follower: Arc::new(AbortOnDrop(follower)),
        }
    }

    /// Whether the change stream is live (answers are being cached).
    pub fn is_following(&self) -> bool {
        self.inner.live.load(Ordering::Acquire)
    }

    /// How many answers are cached.
    pub fn cached(&self) -> u64 {
        self.inner.cache.run_pending_tasks();
        self.inner.cache.entry_count()
    }

    /// The server's answer for `request`: from the cache when it may be trusted, else asked.
    pub async fn verify(&self, request: &VerifyRequest) -> Result<Arc<VerifyAnswer>, ClientError> {
        let inner = &self.inner;
        let key = cache_key(request);
        if inner.may_serve_cached() {
            if let Some(hit) = inner.cache.get(&key) {
                return Ok(hit.answer);
            }
        }
        let generation = inner.generation.load(Ordering::Acquire);
        let answer = Arc::new(inner.client.verify(request).await?);
        // A metered answer is never reused: each verification must be charged by the server,
        // and its `RateLimit` fields are only true once.
        if answer.ratelimits.is_empty()
            && answer.credits.is_empty()
            && inner.live.load(Ordering::Acquire)
            && inner.generation.load(Ordering::Acquire) == generation
        {
            inner.cache.insert(
                key,
                Cached {
                    answer: answer.clone(),
                    pair: request.key.is_some() && request.access_token.is_some(),
                },
            );
        }
        Ok(answer)
    }
}

impl Inner {
    fn may_serve_cached(&self) -> bool {
        if self.live.load(Ordering::Acquire) {
            return true;
        }
        self.last_heard
            .lock()
            .expect("last_heard lock")
            .is_some_and(|t| t.elapsed() < self.options.serve_stale_for)
    }

    fn heard(&self) {
        *self.last_heard.lock().expect("last_heard lock") = Some(Instant::now());
    }

    fn apply(&self, event: ChangeEvent) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        // Registered predicates apply to every entry inserted before them, from the next read on.
        if self
            .cache
            .invalidate_entries_if(move |_, c| affected(&event, c))
            .is_err()
        {
            self.cache.invalidate_all();
        }
    }

    fn reset(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.cache.invalidate_all();
    }
}

/// Whether a change may have made a cached answer wrong.
fn affected(e: &ChangeEvent, c: &Cached) -> bool {
    let a = &c.answer;
    let same = |x: &Option<String>, y: &Option<String>| x.is_some() && x == y;
    match e.kind {
        // A key answered NOT_FOUND may be the one just created (or imported).
        ChangeKind::Key => {
            a.key_id.is_none()
                || same(&a.key_id, &e.key_id)
                || (c.pair && same(&a.workspace_id, &e.workspace_id))
        }
        ChangeKind::Token => {
            a.key_id.is_none() || same(&a.token_id, &e.token_id) || same(&a.key_id, &e.key_id)
        }
        ChangeKind::Principal => {
            same(&a.workspace_id, &e.workspace_id) && same(&a.owner_id, &e.user_id)
        }
        ChangeKind::Workspace => same(&a.workspace_id, &e.workspace_id),
        ChangeKind::User => same(&a.owner_id, &e.user_id),
    }
}

/// A digest of everything the answer depends on, so the cache holds no credential.
fn cache_key(r: &VerifyRequest) -> [u8; 32] {
    let mut h = Sha256::new();
    let mut field = |v: Option<&str>| {
        match v {
            Some(s) => {
                h.update([1]);
                h.update((s.len() as u64).to_be_bytes());
                h.update(s.as_bytes());
            }
            None => h.update([0]),
        };
    };
    field(r.key.as_deref());
    field(r.access_token.as_deref());
    field(r.origin.as_deref());
    field(r.ip.as_deref());
    for p in &r.permissions {
        field(Some(p));
    }
    h.finalize().into()
}

/// Follows the change stream for as long as the verifier lives, reconnecting as needed.
async fn follow(inner: Arc<Inner>) {
    let mut position: Option<i64> = None;
    let mut refused_logged = false;
    loop {
        match inner.client.changes(position).await {
            Ok(resp) => {
                refused_logged = false;
                read_stream(&inner, resp, &mut position).await;
                tracing::warn!("the Latchkey change stream closed; reconnecting");
            }
            Err(ClientError::Refused { status }) => {
                if !refused_logged {
                    tracing::error!(
                        status,
                        "the Latchkey server refused this verifier's key for the change stream \
                         (it needs latchkey:verify); answers are not cached"
                    );
                    refused_logged = true;
                }
            }
            Err(e) => tracing::debug!(error = %e, "change stream unavailable"),
        }
        inner.live.store(false, Ordering::Release);
        tokio::time::sleep(inner.options.reconnect_after).await;
    }
}

async fn read_stream(inner: &Inner, mut resp: reqwest::Response, position: &mut Option<i64>) {
    let mut parser = SseParser::default();
    loop {
        let chunk = match tokio::time::timeout(inner.options.stream_silence, resp.chunk()).await {
            Ok(Ok(Some(c))) => c,
            _ => return, // closed, failed, or silent too long
        };
        if inner.live.load(Ordering::Acquire) {
            inner.heard();
        }
        for event in parser.feed(&chunk) {
            let id = event.id.as_deref().and_then(|s| s.parse::<i64>().ok());
            match event.event.as_str() {
                CHANGE => match serde_json::from_str::<ChangeEvent>(&event.data) {
                    Ok(change) => inner.apply(change),
                    // A change this version cannot read: drop everything rather than guess.
                    Err(_) => inner.reset(),
                },
                RESET => inner.reset(),
                READY => {
                    if serde_json::from_str::<StreamMarker>(&event.data).is_err() {
                        return;
                    }
                    inner.heard();
                    inner.live.store(true, Ordering::Release);
                }
                _ => {}
            }
            if let Some(id) = id {
                *position = Some(id);
            }
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(key: Option<&str>, ws: &str, owner: &str) -> Cached {
        Cached {
            answer: Arc::new(VerifyAnswer {
                valid: key.is_some(),
                code: if key.is_some() { "VALID" } else { "NOT_FOUND" }.into(),
                key_id: key.map(Into::into),
                token_id: None,
                name: None,
                key_type: None,
                environment: None,
                workspace_id: key.map(|_| ws.into()),
                owner_id: key.map(|_| owner.into()),
                permissions: vec![],
                expires_at: None,
                metadata: None,
                ratelimits: vec![],
                credits: vec![],
            }),
            pair: false,
        }
    }

    fn event(kind: ChangeKind, f: impl FnOnce(&mut ChangeEvent)) -> ChangeEvent {
        let mut e = ChangeEvent::new(1, kind);
        f(&mut e);
        e
    }

    #[test]
    fn a_change_drops_exactly_the_answers_it_may_have_made_wrong() {
        let mine = answer(Some("key_1"), "ws_1", "usr_1");
        let other = answer(Some("key_2"), "ws_2", "usr_2");
        let unknown = answer(None, "", "");
        let key1 = event(ChangeKind::Key, |e| {
            e.key_id = Some("key_1".into());
            e.workspace_id = Some("ws_1".into());
        });
        assert!(affected(&key1, &mine));
        assert!(!affected(&key1, &other));
        assert!(
            affected(&key1, &unknown),
            "a new key may be the unknown one"
        );
        let member = event(ChangeKind::Principal, |e| {
            e.workspace_id = Some("ws_1".into());
            e.user_id = Some("usr_1".into());
        });
        assert!(affected(&member, &mine));
        assert!(!affected(&member, &other));
        assert!(!affected(&member, &unknown));
        let ws = event(ChangeKind::Workspace, |e| {
            e.workspace_id = Some("ws_2".into())
        });
        assert!(!affected(&ws, &mine));
        assert!(affected(&ws, &other));
        let user = event(ChangeKind::User, |e| e.user_id = Some("usr_2".into()));
        assert!(affected(&user, &other));
        assert!(!affected(&user, &mine));
        let mut pair = answer(Some("key_1"), "ws_1", "usr_1");
        pair.pair = true;
        let key3 = event(ChangeKind::Key, |e| {
            e.key_id = Some("key_3".into());
            e.workspace_id = Some("ws_1".into());
        });
        assert!(
            affected(&key3, &pair),
            "a pair's other key is not in its answer"
        );
        assert!(!affected(&key3, &mine));
    }

    #[test]
    fn the_cache_key_separates_every_field() {
        let a = VerifyRequest {
            key: Some("ab".into()),
            origin: Some("c".into()),
            ..Default::default()
        };
        let b = VerifyRequest {
            key: Some("a".into()),
            origin: Some("bc".into()),
            ..Default::default()
        };
        assert_ne!(cache_key(&a), cache_key(&b));
        let c = VerifyRequest {
            permissions: vec!["x".into()],
            ..a.clone()
        };
        assert_ne!(cache_key(&a), cache_key(&c));
        assert_eq!(cache_key(&a), cache_key(&a.clone()));
    }
}
