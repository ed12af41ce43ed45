//! Shared test support: build the example vals once, start a real server
//! on an ephemeral loopback port with a temporary data dir, and talk to it
//! over HTTP.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::Value;
use tempfile::TempDir;
use valbox_model::Limits;
use valbox_server::config::Config;
use valbox_server::server::Server;

pub mod api;
pub mod balanced;
pub mod browser;
pub mod postgres;
pub mod process;
pub mod s3;
pub mod smtp;

pub use api::Api;
pub use process::{dies_with_us, repo_root};

/// Whether the tests run on PostgreSQL (`VALBOX_TEST_STORE=postgres`).
pub fn on_postgres() -> bool {
    std::env::var("VALBOX_TEST_STORE").is_ok_and(|v| v == "postgres")
}

/// Build every example into `target/vals/` once per test binary.
pub fn val_path(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let status = Command::new(repo_root().join("scripts/build-vals"))
            .status()
            .expect("running scripts/build-vals");
        assert!(status.success(), "scripts/build-vals failed");
        repo_root().join("target/vals")
    });
    let path = dir.join(format!("{name}.wasm"));
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// `wasm` with a custom section `name` holding `text` appended: what the
/// guest SDK's declarations (`valbox_sdk::scopes!`, `reuse!`) write,
/// placed where any component may hold one.
pub fn with_section(mut wasm: Vec<u8>, name: &str, text: &str) -> Vec<u8> {
    let leb = |mut n: usize, out: &mut Vec<u8>| loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    };
    let mut body = Vec::new();
    leb(name.len(), &mut body);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(text.as_bytes());
    wasm.push(0);
    leb(body.len(), &mut wasm);
    wasm.extend(body);
    wasm
}

pub fn val_bytes(name: &str) -> Vec<u8> {
    std::fs::read(val_path(name)).unwrap()
}

pub struct TestServer {
    pub server: Option<Server>,
    pub dir: TempDir,
    pub addr: std::net::SocketAddr,
    /// Its HTTP API, as alice: `s.base`, `s.alice`, `s.get(..)`.
    api: Api,
    /// alice's user id.
    alice_id: String,
    /// The metadata store's PostgreSQL URL, when the tests run on it.
    pub database: Option<String>,
    /// The bucket of components and blobs (`s3://…`), with PostgreSQL.
    pub objects: Option<String>,
    /// The PostgreSQL cluster this server's store lives on, if any.
    cluster: Option<std::sync::Arc<postgres::Cluster>>,
    /// Call tokens minted by the tests, live until the server is dropped
    /// (or their lifetime ends), as if their calls were still running.
    call_leases: std::sync::Mutex<Vec<valbox_auth::MintedToken>>,
}

/// One compile cache for every test server: the JavaScript and Python
/// vals share their language engine, which then compiles once per run of
/// the tests, not once per server.
pub fn shared_compile_cache() -> PathBuf {
    repo_root().join("target/test-compile-cache.sqlite3")
}

pub fn test_limits() -> Limits {
    Limits {
        // Small pools keep many test servers in one process cheap.
        concurrent_instances: 50,
        timeout: Duration::from_secs(5),
        ..Limits::default()
    }
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tune: impl FnOnce(&mut Limits)) -> Self {
        Self::start_configured(|c| tune(&mut c.limits)).await
    }

    /// A server on the store the environment picks: PostgreSQL (a
    /// throwaway cluster of its own) and S3 (a bucket of its own on the
    /// binary's moto server) with `VALBOX_TEST_STORE=postgres`, else the
    /// embedded store in its data directory.
    pub async fn start_configured(tune: impl FnOnce(&mut Config)) -> Self {
        Self::start_on(on_postgres(), tune).await
    }

    /// A server whose metadata is on a throwaway PostgreSQL cluster and
    /// whose objects are on S3, whatever the environment says.
    pub async fn start_on_postgres() -> Self {
        Self::start_on(true, |_| {}).await
    }

    /// As [`TestServer::start_on_postgres`], configured by `tune`.
    pub async fn start_on_postgres_with(tune: impl FnOnce(&mut Config)) -> Self {
        Self::start_on(true, tune).await
    }

    async fn start_on(postgres: bool, tune: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new(dir.path(), "127.0.0.1:0".parse().unwrap());
        let cluster = postgres.then(|| std::sync::Arc::new(postgres::Cluster::start()));
        if let Some(cluster) = &cluster {
            config.database = Some(cluster.database("valbox").await);
            config.objects = Some(s3::S3Server::shared().bucket().await);
        }
        let at = valbox::cli::StoreArgs {
            data: dir.path().to_path_buf(),
            database: config.database.clone(),
            objects: config.objects.clone(),
        };
        let store = at.open().await.unwrap();
        let alice = valbox::cli::create_user_in(&store, "alice", "alice@example.com")
            .await
            .unwrap();
        let alice_id = store.users.by_name("alice").await.unwrap().unwrap().id;
        config.limits = test_limits();
        config.compile_cache = shared_compile_cache();
        tune(&mut config);
        Self::start_in_config(dir, config, (alice, alice_id), cluster).await
    }

    async fn start_in_config(
        dir: TempDir,
        config: Config,
        (alice, alice_id): (String, String),
        cluster: Option<std::sync::Arc<postgres::Cluster>>,
    ) -> Self {
        let (database, objects) = (config.database.clone(), config.objects.clone());
        let server = Server::start(config).await.unwrap();
        let addr = server.addr;
        Self {
            server: Some(server),
            dir,
            addr,
            api: Api::new(format!("http://{addr}"), alice),
            alice_id,
            database,
            objects,
            cluster,
            call_leases: Default::default(),
        }
    }

    /// The PostgreSQL cluster under this server, if it runs on one.
    pub fn cluster(&self) -> Option<&postgres::Cluster> {
        self.cluster.as_deref()
    }

    /// Another node on this server's PostgreSQL database, with a data
    /// directory of its own.
    pub async fn another_node(&self) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new(dir.path(), "127.0.0.1:0".parse().unwrap());
        config.limits = test_limits();
        config.compile_cache = shared_compile_cache();
        config.database = Some(
            self.database
                .clone()
                .expect("another node needs PostgreSQL"),
        );
        config.objects = self.objects.clone();
        // Every node of one store seals with the same key.
        config.secret_key_file = Some(self.dir.path().join("secret.key"));
        let alice = (self.alice.clone(), self.alice_id.clone());
        Self::start_in_config(dir, config, alice, self.cluster.clone()).await
    }

    /// Stop the server, keeping its data, and start a new one on it.
    pub async fn restart(self) -> Self {
        self.restart_after(Duration::ZERO).await
    }

    /// [`TestServer::restart`], down for `down` in between.
    pub async fn restart_after(self, down: Duration) -> Self {
        self.restart_configured(down, |_| {}).await
    }

    /// [`TestServer::restart_after`], the new server's configuration
    /// tuned by `tune`.
    pub async fn restart_configured(
        mut self,
        down: Duration,
        tune: impl FnOnce(&mut Config),
    ) -> Self {
        self.server.take().unwrap().shutdown().await.unwrap();
        tokio::time::sleep(down).await;
        let mut config = Config::new(self.dir.path(), "127.0.0.1:0".parse().unwrap());
        config.limits = test_limits();
        config.compile_cache = shared_compile_cache();
        config.database = self.database.take();
        config.objects = self.objects.take();
        let cluster = self.cluster.take();
        tune(&mut config);
        let alice = (self.api.alice, self.alice_id);
        Self::start_in_config(self.dir, config, alice, cluster).await
    }

    pub async fn create_user(&self, name: &str) -> String {
        let email = format!("{name}@example.com");
        valbox::cli::create_user_in(&self.store().await, name, &email)
            .await
            .unwrap()
    }

    /// Another connection to the server's metadata store, as the CLI
    /// opens it beside a running server.
    pub async fn store(&self) -> valbox_store::Store {
        let database = self.database.as_deref();
        valbox_store::open(database, self.dir.path()).await.unwrap()
    }

    /// The metadata database itself, for what no interface shows.
    pub fn db(&self) -> valbox_store::sqlite::Db {
        let path = self.dir.path().join("valbox.db");
        valbox_store::sqlite::Sqlite::open(&path)
            .unwrap()
            .db()
            .clone()
    }

    pub fn app(&self) -> &valbox_server::app::App {
        &self.server.as_ref().unwrap().app
    }

    /// Mint a call token for alice's val `val_id`, as a call of it would.
    pub fn mint_call_token(
        &self,
        val_id: &str,
        scopes: valbox_model::Scopes,
        lifetime: Duration,
    ) -> String {
        let now = valbox_model::now_ms();
        let mut lease = self.app().auth.call_tokens.mint(valbox_auth::CallToken {
            id: String::new(),
            owner_id: self.alice_id(),
            username: "alice".into(),
            val_id: val_id.into(),
            scopes,
            created_at_ms: now,
            deadline: std::time::Instant::now() + lifetime,
            expires_at_ms: now + lifetime.as_millis() as i64,
        });
        let text = lease.text().to_string();
        self.call_leases.lock().unwrap().push(lease);
        text
    }

    /// alice's user id.
    pub fn alice_id(&self) -> String {
        self.alice_id.clone()
    }
}

impl std::ops::Deref for TestServer {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

/// Run Val Town's official client (`tests/valtown-sdk/check.mjs`) against
/// `api` as alice, with `env` added; panic with its output if a check fails.
pub async fn official_client_checks(api: &Api, val_id: &str, env: &[(&str, &str)]) {
    let dir = repo_root().join("tests/valtown-sdk");
    assert!(
        dir.join("node_modules/@valtown/sdk").exists(),
        "run `npm ci` in tests/valtown-sdk first (scripts/test does)"
    );
    let mut command = Command::new("node");
    command
        .arg("check.mjs")
        .current_dir(dir)
        .env("VAL_TOWN_BASE_URL", &api.base)
        .env("VAL_TOWN_API_KEY", &api.alice)
        .env("VAL_ID", val_id)
        .envs(env.iter().copied());
    let output = tokio::task::spawn_blocking(move || command.output().expect("running node"))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the official client failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
}

/// Assert a JSON error response: status, `error` code, and a message.
pub async fn assert_error(resp: Response, status: StatusCode, code: &str) -> String {
    let actual = resp.status();
    let body: Value = resp.json().await.expect("error bodies are JSON");
    assert_eq!(actual, status, "unexpected status: {body}");
    assert_eq!(body["error"], code, "unexpected error code in {body}");
    let message = body["message"].as_str().unwrap().to_string();
    assert!(!message.is_empty());
    message
}
