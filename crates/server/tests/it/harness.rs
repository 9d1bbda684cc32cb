//! Test harness: a real Latchkey server on 127.0.0.1:0 with its own database (a fresh SQLite
//! file, or a fresh PostgreSQL database dropped afterwards), and a real HTTP client.

use latchkey_server::{App, Config};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::future::Future;
use std::path::PathBuf;
use tokio::sync::oneshot;

pub const PG_ENV: &str = "LATCHKEY_TEST_POSTGRES_URL";

#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    Postgres(String),
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }
}

/// SQLite always; PostgreSQL whenever `LATCHKEY_TEST_POSTGRES_URL` is set (CI always sets it).
pub fn backends() -> Vec<Backend> {
    let mut v = vec![Backend::Sqlite];
    if let Ok(url) = std::env::var(PG_ENV) {
        if !url.is_empty() {
            v.push(Backend::Postgres(url));
        }
    }
    v
}

/// Runs one scenario against every backend, each on a fresh server.
pub async fn each_backend<F, Fut>(scenario: F)
where
    F: Fn(TestServer) -> Fut,
    Fut: Future<Output = ()>,
{
    each_backend_with(|_| {}, scenario).await
}

/// Like [`each_backend`], with the servers' configuration changed by `configure` first.
pub async fn each_backend_with<C, F, Fut>(configure: C, scenario: F)
where
    C: Fn(&mut Config),
    F: Fn(TestServer) -> Fut,
    Fut: Future<Output = ()>,
{
    for b in backends() {
        let srv = TestServer::start_with(&b, &configure).await;
        scenario(srv).await;
    }
}

/// Polls `probe` every 25 ms until it returns true, for at most `limit`; then fails naming `what`.
pub async fn eventually<F, Fut>(what: &str, limit: std::time::Duration, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if probe().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("{what}: not seen within {limit:?}");
}

pub fn random_suffix() -> String {
    let mut s = String::new();
    latchkey_core::base62::push_random(10, &mut s);
    s.to_lowercase()
}

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        Self::inside(&std::env::temp_dir())
    }

    pub fn inside(parent: &std::path::Path) -> Self {
        let p = parent.join(format!("latchkey-test-{}", random_suffix()));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A PostgreSQL database created for one test and dropped (with its connections) afterwards.
pub struct PgDatabase {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    /// A database of its own on PostgreSQL; none on SQLite (its file lives in the data dir).
    pub async fn for_backend(backend: &Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => None,
            Backend::Postgres(admin) => Some(Self::create(admin).await),
        }
    }

    pub async fn create(admin_url: &str) -> Self {
        use sqlx::Connection;
        let name = format!("latchkey_test_{}", random_suffix());
        let mut conn = sqlx::PgConnection::connect(admin_url)
            .await
            .unwrap_or_else(|e| panic!("{PG_ENV} is set but PostgreSQL is unreachable: {e}"));
        sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        let mut url = url::Url::parse(admin_url).unwrap();
        url.set_path(&name);
        Self {
            admin_url: admin_url.to_owned(),
            url: url.to_string(),
            name,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime; do the async cleanup on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                use sqlx::Connection;
                if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::Executor::execute(
                        &mut c,
                        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
                    )
                    .await;
                }
            });
        })
        .join();
    }
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        self.body
    }

    /// Asserts a problem+json error with this status and code, and returns the body.
    #[track_caller]
    pub fn problem(self, status: u16, code: &str) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        assert_eq!(
            self.headers
                .get("content-type")
                .map(|v| v.to_str().unwrap()),
            Some("application/problem+json"),
            "errors are problem+json"
        );
        assert_eq!(self.body["code"], code, "body: {}", self.body);
        assert_eq!(self.body["status"], status);
        assert!(self.body["title"].is_string() && self.body["type"].is_string());
        self.body
    }
}

pub struct TestServer {
    pub url: String,
    pub admin_key: String,
    /// The bootstrap admin's dashboard sign-in.
    pub admin_email: String,
    pub admin_password: String,
    pub admin_user_id: String,
    pub http: reqwest::Client,
    /// What another node needs to join: the same database and server secret.
    config: Config,
    shutdown: Option<oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
    _dir: TempDir,
    _pg: Option<PgDatabase>,
}

impl TestServer {
    pub async fn start(backend: &Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: &Backend, configure: impl Fn(&mut Config)) -> Self {
        Self::start_in(backend, TempDir::new(), configure).await
    }

    /// A SQLite server whose data directory is inside `parent` (a file system of the test's).
    pub async fn start_sqlite_in(parent: &std::path::Path) -> Self {
        Self::start_in(&Backend::Sqlite, TempDir::inside(parent), |_| {}).await
    }

    async fn start_in(backend: &Backend, dir: TempDir, configure: impl Fn(&mut Config)) -> Self {
        let mut config = Config::for_data_dir(&dir.0);
        config.usage_flush = std::time::Duration::from_millis(50);
        config.secret = Some(latchkey_core::Secret::new(format!(
            "{}{}{}{}",
            random_suffix(),
            random_suffix(),
            random_suffix(),
            random_suffix()
        )));
        let pg = PgDatabase::for_backend(backend).await;
        config.database = Some(
            pg.as_ref()
                .map_or_else(|| config.database_url(), |p| p.url.clone()),
        );
        configure(&mut config);
        let app = App::open(&config).await.expect("server opens");
        let boot = app
            .bootstrap()
            .await
            .unwrap()
            .expect("fresh database bootstraps");
        let mut srv = Self::serve(app, config, boot.admin_key, boot.admin_user_id, dir, pg);
        srv.admin_email = boot.admin_email;
        srv.admin_password = boot.admin_password;
        srv
    }

    pub fn backend_name(&self) -> &'static str {
        if self._pg.is_some()
            || self
                .config
                .database
                .as_deref()
                .is_some_and(|d| d.starts_with("postgres"))
        {
            "postgres"
        } else {
            "sqlite"
        }
    }

    /// The PostgreSQL database of this deployment, if it runs on PostgreSQL.
    pub fn pg_database(&self) -> Option<&str> {
        self._pg.as_ref().map(|p| p.name.as_str())
    }

    /// The database URL and server secret, for running server-side commands against this deployment.
    pub fn database_and_secret(&self) -> (String, String) {
        let db = self.config.database.clone().expect("set at start");
        let secret = self
            .config
            .secret
            .as_ref()
            .expect("set at start")
            .expose()
            .to_owned();
        (db, secret)
    }

    /// A second node on the same database with the same server secret (SPEC §9).
    pub async fn another_node(&self) -> Self {
        self.another_node_polling(self.config.change_poll).await
    }

    /// A second node that reads the change log every `poll` (besides PostgreSQL notifications).
    pub async fn another_node_polling(&self, poll: std::time::Duration) -> Self {
        let mut config = self.config.clone();
        config.change_poll = poll;
        let app = App::open(&config).await.expect("second node opens");
        assert!(
            app.bootstrap().await.unwrap().is_none(),
            "the deployment is already initialised"
        );
        Self::serve(
            app,
            config,
            self.admin_key.clone(),
            self.admin_user_id.clone(),
            TempDir::new(),
            None,
        )
    }

    fn serve(
        app: App,
        config: Config,
        admin_key: String,
        admin_user_id: String,
        dir: TempDir,
        pg: Option<PgDatabase>,
    ) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let done = tokio::spawn(async move {
            app.serve(listener, None, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Self {
            url,
            admin_key,
            admin_email: String::new(),
            admin_password: String::new(),
            admin_user_id,
            http: reqwest::Client::new(),
            config,
            shutdown: Some(tx),
            done: Some(done),
            _dir: dir,
            _pg: pg,
        }
    }

    /// Graceful stop: in-flight requests finish and batched writes are flushed.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(done) = self.done.take() {
            done.await.unwrap();
        }
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{}", self.url, path))
    }

    pub async fn send(&self, rb: reqwest::RequestBuilder) -> Resp {
        let r = rb.send().await.expect("request reaches the server");
        let status = r.status();
        let headers = r.headers().clone();
        let bytes = r.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut rb = self.request(method, path);
        if let Some(k) = key {
            rb = rb.bearer_auth(k);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        self.send(rb).await
    }

    pub async fn get(&self, path: &str, key: &str) -> Resp {
        self.call(Method::GET, path, Some(key), None).await
    }
    pub async fn post(&self, path: &str, key: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(key), Some(body)).await
    }
    pub async fn patch(&self, path: &str, key: &str, body: Value) -> Resp {
        self.call(Method::PATCH, path, Some(key), Some(body)).await
    }
    pub async fn put(&self, path: &str, key: &str, body: Value) -> Resp {
        self.call(Method::PUT, path, Some(key), Some(body)).await
    }
    pub async fn delete(&self, path: &str, key: &str) -> Resp {
        self.call(Method::DELETE, path, Some(key), None).await
    }

    /// Creates a user (as the instance admin) and returns their id.
    pub async fn user(&self, name: &str) -> String {
        let body = self
            .post(
                "/v1/users",
                &self.admin_key,
                json!({"email": format!("{name}-{}@example.com", random_suffix()), "name": name}),
            )
            .await
            .expect(201);
        body["id"].as_str().unwrap().to_owned()
    }

    pub async fn workspace(&self, name: &str) -> String {
        let body = self
            .post("/v1/workspaces", &self.admin_key, json!({"name": name}))
            .await
            .expect(201);
        body["id"].as_str().unwrap().to_owned()
    }

    pub async fn set_member(&self, ws: &str, user: &str, role: &str) {
        let r = self
            .put(
                &format!("/v1/workspaces/{ws}/members/{user}"),
                &self.admin_key,
                json!({"role": role}),
            )
            .await;
        assert!(r.status.is_success(), "set member: {}", r.body);
    }

    /// A new user with `role` in workspace `ws`, and a live secret key of theirs (issued by the admin).
    pub async fn member_with_key(&self, ws: &str, role: &str) -> (String, String) {
        let user = self.user(role).await;
        self.set_member(ws, &user, role).await;
        let key = self.key_for(ws, &user, json!({})).await;
        (user, key["key"].as_str().unwrap().to_owned())
    }

    /// A key of a new instance verifier (SPEC §5.1): what a provider gives its gateway and
    /// services. Its owner is a plain member of the admin's workspace.
    pub async fn instance_verifier_key(&self) -> String {
        let body = self
            .post(
                "/v1/users",
                &self.admin_key,
                json!({"email": format!("verifier-{}@example.com", random_suffix()), "name": "Gateway", "instance_role": "verifier"}),
            )
            .await
            .expect(201);
        let user = body["id"].as_str().unwrap().to_owned();
        let ws = self.workspace_of(&self.admin_key).await;
        self.set_member(&ws, &user, "member").await;
        let key = self.key_for(&ws, &user, json!({"name": "gateway"})).await;
        key["key"].as_str().unwrap().to_owned()
    }

    /// The admin creates a key for `owner` in `ws`; `extra` adds fields to the request.
    pub async fn key_for(&self, ws: &str, owner: &str, extra: Value) -> Value {
        let mut body = json!({"name": "test key", "workspace_id": ws, "owner_id": owner, "environment": "live"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.post("/v1/keys", &self.admin_key, body)
            .await
            .expect(201)
    }

    /// The workspace a key belongs to.
    pub async fn workspace_of(&self, key: &str) -> String {
        self.get("/v1/me", key).await.expect(200)["workspace"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// How many keys `key` can list (up to 500).
    pub async fn key_count(&self, key: &str) -> usize {
        self.get("/v1/keys?limit=500", key).await.expect(200)["data"]
            .as_array()
            .unwrap()
            .len()
    }

    /// `POST /v1/verify` as the instance admin.
    pub async fn verify(&self, body: Value) -> Value {
        self.post("/v1/verify", &self.admin_key, body)
            .await
            .expect(200)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A `latchkey serve` process (the real binary), for crash and log tests.
pub struct ServerProcess {
    pub child: std::process::Child,
    pub url: String,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
}

impl ServerProcess {
    pub fn spawn(
        data_dir: &std::path::Path,
        database: Option<&str>,
        envs: &[(&str, &str)],
    ) -> Self {
        Self::spawn_with(data_dir, database, envs, &[], "http")
    }

    /// `extra` args are appended after `serve --listen 127.0.0.1:PORT --data-dir DIR`.
    pub fn spawn_with(
        data_dir: &std::path::Path,
        database: Option<&str>,
        envs: &[(&str, &str)],
        extra: &[&str],
        scheme: &str,
    ) -> Self {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let stdout_path = data_dir.join(format!("stdout-{port}.log"));
        let stderr_path = data_dir.join(format!("stderr-{port}.log"));
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"));
        cmd.arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir)
            .env_remove("LATCHKEY_DATABASE")
            .stdout(std::fs::File::create(&stdout_path).unwrap())
            .stderr(std::fs::File::create(&stderr_path).unwrap());
        if let Some(db) = database {
            cmd.arg("--database").arg(db);
        }
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.args(extra);
        let child = cmd.spawn().expect("spawn latchkey serve");
        Self {
            child,
            url: format!("{scheme}://127.0.0.1:{port}"),
            stdout_path,
            stderr_path,
        }
    }

    pub async fn wait_ready(&self) {
        let http = reqwest::Client::new();
        for _ in 0..300 {
            if http
                .get(format!("{}/readyz", self.url))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!(
            "server did not become ready: {}",
            std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
        );
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    pub fn output(&self) -> String {
        self.stdout() + &std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The admin key printed once on first start.
    pub fn admin_key(&self) -> String {
        self.stdout()
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("admin API key:")
                    .map(|k| k.trim().to_owned())
            })
            .expect("bootstrap output has the admin key")
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        self.child.wait().unwrap()
    }

    pub fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
