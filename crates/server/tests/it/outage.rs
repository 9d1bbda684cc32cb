//! An outage is never a verdict (SPEC §6.4): while the database is unreachable, a key that
//! cannot be checked is answered 503 `unavailable` with `Retry-After` (never 401 or
//! `NOT_FOUND`), cached verifications keep answering, writes fail promptly, `/readyz` says so,
//! and everything recovers by itself when the database is back.
//!
//! PostgreSQL: a server of the test's own, stopped and started again (never the shared one).
//! SQLite: its data directory on a small file system of the test's own, filled up.

use crate::harness::{backends, eventually, Backend, Resp, TempDir, TestServer};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A PostgreSQL server in a temporary directory, on a port of its own (forward auth's outage
/// test uses it too).
pub(crate) struct OwnPostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: TempDir,
}

impl OwnPostgres {
    pub(crate) fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL's server binaries are installed (/usr/lib/postgresql)")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").exists())
            .max()
            .expect("an initdb under /usr/lib/postgresql/*/bin");
        let dir = TempDir::new();
        let data = dir.0.join("data");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = Self {
            bin,
            data,
            port,
            _dir: dir,
        };
        // PostgreSQL refuses to run as root: the directory goes to its own user.
        if is_root() {
            run(Command::new("chown").arg("postgres:").arg(&pg._dir.0));
        }
        run(pg
            .as_postgres(&pg.bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&pg.data));
        pg.up();
        pg
    }

    fn as_postgres(&self, program: &Path) -> Command {
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    pub(crate) fn up(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self._dir.0.display()
        );
        run(self
            .as_postgres(&self.bin.join("pg_ctl"))
            .args(["-w", "-s", "-l"])
            .arg(self._dir.0.join("log"))
            .arg("-D")
            .arg(&self.data)
            .args(["-o", &opts, "start"]));
    }

    /// Stops at once, as a crash or a network cut would look to clients.
    pub(crate) fn down(&self) {
        run(self
            .as_postgres(&self.bin.join("pg_ctl"))
            .args(["-w", "-s", "-m", "immediate", "-D"])
            .arg(&self.data)
            .arg("stop"));
    }

    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self
            .as_postgres(&self.bin.join("pg_ctl"))
            .args(["-w", "-s", "-m", "immediate", "-D"])
            .arg(&self.data)
            .arg("stop")
            .status();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

#[track_caller]
fn run(c: &mut Command) {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(
        out.status.success(),
        "{c:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[track_caller]
fn unavailable(r: Resp) {
    assert!(
        r.headers.contains_key("retry-after"),
        "a 503 says when to retry"
    );
    r.problem(503, "unavailable");
}

/// Recovery needs no restart, only the database.
const RECOVERS: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_postgres_outage_is_503_never_a_verdict_and_recovers() {
    if !backends().iter().any(|b| matches!(b, Backend::Postgres(_))) {
        eprintln!("not run: needs LATCHKEY_TEST_POSTGRES_URL");
        return;
    }
    let pg = OwnPostgres::start();
    let srv = TestServer::start(&Backend::Postgres(pg.url())).await;
    let cached = srv
        .post("/v1/keys", &srv.admin_key, json!({"name": "cached"}))
        .await
        .expect(201)["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let uncached = srv
        .post("/v1/keys", &srv.admin_key, json!({"name": "never used"}))
        .await
        .expect(201)["key"]
        .as_str()
        .unwrap()
        .to_owned();
    srv.get("/v1/me", &cached).await.expect(200);
    assert_eq!(srv.verify(json!({"key": cached})).await["code"], "VALID");
    let session = crate::dashboard::sign_in(&srv, &srv.admin_email, &srv.admin_password)
        .await
        .expect("the admin signs in");
    let session = session.split(';').next().unwrap().to_owned();
    let keys_page = || async {
        crate::dashboard::client()
            .get(format!("{}/keys", srv.url))
            .header("cookie", &session)
            .send()
            .await
            .unwrap()
    };
    assert_eq!(keys_page().await.status(), 200);

    pg.down();

    // A signed-in person is told to wait, not signed out.
    let page = keys_page().await;
    assert_eq!(page.status(), 503, "not a redirect to /login");
    assert!(page.headers().contains_key("retry-after"));

    // What is cached still answers, verdicts included.
    srv.get("/v1/me", &cached).await.expect(200);
    assert_eq!(srv.verify(json!({"key": cached})).await["code"], "VALID");
    // What is not cannot be checked: 503, on every way of asking.
    unavailable(srv.get("/v1/me", &uncached).await);
    unavailable(
        srv.post("/v1/verify", &srv.admin_key, json!({"key": uncached}))
            .await,
    );
    unavailable(
        srv.post("/v1/auth/token", &uncached, json!({"ttl_seconds": 60}))
            .await,
    );
    let oauth = srv
        .send(
            srv.request(reqwest::Method::POST, "/oauth/token")
                .basic_auth("key_x", Some(&uncached))
                .form(&[("grant_type", "client_credentials")]),
        )
        .await;
    assert_eq!(oauth.status, 503, "{}", oauth.body);
    assert_eq!(oauth.body["error"], "temporarily_unavailable");
    // A write fails promptly (within the pool's 3 s wait, not a hang) and changes nothing.
    let started = Instant::now();
    unavailable(
        srv.post(
            "/v1/keys",
            &srv.admin_key,
            json!({"name": "during the outage"}),
        )
        .await,
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "a write during an outage answers instead of hanging ({:?})",
        started.elapsed()
    );
    let ready = srv.send(srv.request(reqwest::Method::GET, "/readyz")).await;
    assert_eq!(ready.status, 503, "readyz reports the outage");

    pg.up();

    eventually("readyz", RECOVERS, || async {
        srv.send(srv.request(reqwest::Method::GET, "/readyz"))
            .await
            .status
            == 200
    })
    .await;
    eventually("an uncached key", RECOVERS, || async {
        srv.get("/v1/me", &uncached).await.status == 200
    })
    .await;
    assert_eq!(srv.verify(json!({"key": uncached})).await["code"], "VALID");
    assert_eq!(
        keys_page().await.status(),
        200,
        "the same session, still signed in"
    );
    let keys = srv
        .get("/v1/keys?limit=500", &srv.admin_key)
        .await
        .expect(200);
    assert!(
        !keys["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["name"] == "during the outage"),
        "the refused write left nothing behind"
    );
    srv.post(
        "/v1/keys",
        &srv.admin_key,
        json!({"name": "after the outage"}),
    )
    .await
    .expect(201);
    srv.stop().await;
}

/// A tmpfs of `size`, mounted for the life of the value.
struct SmallDisk {
    dir: TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Self {
        let dir = TempDir::new();
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir.0));
        Self { dir }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir.0).status();
    }
}

/// Fills the file system at `dir` with one file until it refuses more.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let block = vec![0u8; 64 * 1024];
    while f.write_all(&block).is_ok() {}
    let _ = f.sync_all();
    path
}

#[tokio::test]
async fn a_full_disk_under_sqlite_is_503_for_writes_and_reads_go_on() {
    let disk = SmallDisk::mount("16m");
    let srv = TestServer::start_sqlite_in(&disk.dir.0).await;
    let key = srv
        .post("/v1/keys", &srv.admin_key, json!({"name": "before"}))
        .await
        .expect(201)["key"]
        .as_str()
        .unwrap()
        .to_owned();

    let filler = fill(&disk.dir.0);
    // Enough rows that the write needs new pages, whatever SQLite had spare.
    let mut refused = None;
    for i in 0..50 {
        let r = srv
            .post(
                "/v1/keys",
                &srv.admin_key,
                json!({"name": format!("while full {i}"), "metadata": {"pad": "x".repeat(4000)}}),
            )
            .await;
        if r.status != 201 {
            refused = Some(r);
            break;
        }
    }
    unavailable(refused.expect("a write on a full disk is refused"));
    // Reading needs no space: an uncached key still verifies.
    assert_eq!(srv.verify(json!({"key": key})).await["code"], "VALID");

    std::fs::remove_file(filler).unwrap();
    eventually("writes after space is freed", RECOVERS, || async {
        srv.post("/v1/keys", &srv.admin_key, json!({"name": "after"}))
            .await
            .status
            == 201
    })
    .await;
    srv.stop().await;
}
