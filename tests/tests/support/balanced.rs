//! Valbox nodes as processes of their own (the `valbox-node` binary) on
//! one PostgreSQL database and one S3 bucket, behind HAProxy checking
//! `/readyz`: the README's "Running on many machines", on loopback. A node
//! can be killed with SIGKILL, stopped with SIGTERM, paused and started
//! again on its own data; PostgreSQL can be stopped and started.
//! `VALBOX_NODE_LOG` sets the nodes' `RUST_LOG`; `VALBOX_KEEP_TEST_DIR`
//! keeps their data and logs after the test, and prints where.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::postgres::{self, free_port};
use super::{Api, dies_with_us, s3};

/// How often HAProxy checks a node; `deploy/haproxy.cfg` takes one out
/// after two failed checks.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(300);
/// How long a dead node may still be sent requests.
pub const TAKEN_OUT_WITHIN: Duration = Duration::from_millis(3 * 300);
/// The nodes' lease on a user's SQLite database: short, so that tests
/// see a dead home replaced soon.
pub const LEASE: Duration = Duration::from_secs(3);

pub struct Balanced {
    /// Through the load balancer.
    pub lb: Api,
    pub nodes: Vec<Node>,
    pg: Arc<postgres::Cluster>,
    /// The nodes' PostgreSQL database.
    database: String,
    haproxy: Child,
    dir: TempDir,
}

pub struct Node {
    /// Straight to this node.
    pub api: Api,
    /// Its internal listener, for the other nodes.
    pub cluster: String,
    /// Its metrics, `http://HOST:PORT/metrics`.
    pub metrics: String,
    /// How to start it again, on the same data and ports.
    command: Mutex<Command>,
    child: Mutex<Option<Child>>,
}

impl std::ops::Deref for Node {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl std::ops::Deref for Balanced {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.lb
    }
}

impl Balanced {
    /// Three nodes, each ready, and HAProxy in front of them.
    pub async fn start() -> Self {
        Self::start_with(LEASE, &[]).await
    }

    /// The same, the nodes holding databases' leases for `lease`, with
    /// `more` arguments to `valbox serve`.
    pub async fn start_with(lease: Duration, more: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        if std::env::var_os("VALBOX_KEEP_TEST_DIR").is_some() {
            eprintln!("test dir: {}", dir.path().display());
        }
        let pg = Arc::new(postgres::Cluster::start());
        let database = pg.database("valbox").await;
        let objects = s3::S3Server::shared().bucket().await;
        // Made once, before the nodes start, so that they share it.
        let key = dir.path().join("secret.key");
        valbox_store::secrets::SecretBox::load_or_create(&key).unwrap();
        let secret = dir.path().join("cluster.secret");
        std::fs::write(&secret, format!("{}\n", "5ec7e7".repeat(8))).unwrap();
        let admin = valbox::cli::StoreArgs {
            data: dir.path().join("admin"),
            database: Some(database.clone()),
            objects: Some(objects.clone()),
        };
        let store = admin.open().await.unwrap();
        let alice = valbox::cli::create_user_in(&store, "alice", "alice@example.com")
            .await
            .unwrap();

        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut nodes = Vec::new();
        for (i, port) in ports.iter().enumerate() {
            let cluster = format!("127.0.0.1:{}", free_port());
            let metrics = format!("127.0.0.1:{}", free_port());
            let data = dir.path().join(format!("node{i}"));
            let mut command = Command::new(env!("CARGO_BIN_EXE_valbox-node"));
            command
                .arg("serve")
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .arg("--data")
                .arg(&data)
                .args(["--database", &database, "--objects", &objects])
                .arg("--secret-key-file")
                .arg(&key)
                .args(["--cluster-listen", &cluster])
                .arg("--cluster-secret-file")
                .arg(&secret)
                .args(["--sqlite-lease-ms", &lease.as_millis().to_string()])
                .args(["--metrics-listen", &metrics])
                .args(more)
                // Light on a test machine; room for every test's load.
                .args(["--concurrent-instances", "64"])
                .args(["--concurrent-calls-per-owner", "64"])
                // moto answers in Python, slower than a real S3: 48 visits
                // racing on one blob take it seconds.
                .args(["--timeout-ms", "30000"])
                .env(
                    "RUST_LOG",
                    std::env::var("VALBOX_NODE_LOG").unwrap_or("warn".into()),
                )
                // Litestream's S3 client fails with it set (see replicas).
                .env_remove("AWS_CA_BUNDLE")
                .stdout(Stdio::null());
            dies_with_us(&mut command);
            let node = Node {
                api: Api::new(format!("http://127.0.0.1:{port}"), alice.clone()),
                cluster,
                metrics: format!("http://{metrics}/metrics"),
                command: Mutex::new(command),
                child: Mutex::new(None),
            };
            node.spawn(dir.path(), i);
            nodes.push(node);
        }
        for node in &nodes {
            wait_until_ready(&node.api, dir.path()).await;
        }

        let lb_port = free_port();
        // Debian's, in /usr/sbin, which a user's PATH may lack.
        let mut command = Command::new("/usr/sbin/haproxy");
        command
            .arg("-db")
            .arg("-f")
            .arg(super::repo_root().join("deploy/haproxy.cfg"))
            .env("VALBOX_LB_LISTEN", format!("127.0.0.1:{lb_port}"))
            .env(
                "VALBOX_CHECK_INTERVAL",
                format!("{}ms", CHECK_INTERVAL.as_millis()),
            )
            .stdout(Stdio::null())
            .stderr(File::create(dir.path().join("haproxy.log")).unwrap());
        for (i, port) in ports.iter().enumerate() {
            command.env(format!("VALBOX_NODE{}", i + 1), format!("127.0.0.1:{port}"));
        }
        let haproxy = dies_with_us(&mut command)
            .spawn()
            .expect("starting haproxy: apt-get install haproxy (scripts/test does)");
        let lb = Api::new(format!("http://127.0.0.1:{lb_port}"), alice);
        wait_until_ready(&lb, dir.path()).await;
        Self {
            lb,
            nodes,
            pg,
            database,
            haproxy,
            dir,
        }
    }

    /// Start node `i` again, on its data, and wait until it is ready.
    pub async fn restart(&self, i: usize) {
        self.nodes[i].spawn(self.dir.path(), i);
        wait_until_ready(&self.nodes[i].api, self.dir.path()).await;
    }

    /// SIGTERM node `i` and wait until it has stopped: it finishes its
    /// requests and hands its databases over.
    pub fn terminate(&self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.lock().unwrap().take() {
            signal(&child, libc::SIGTERM);
            child.wait().unwrap();
        }
    }

    /// Freeze node `i` (SIGSTOP), as a machine stalled; `resume` thaws it.
    pub fn pause(&self, i: usize) {
        if let Some(child) = &*self.nodes[i].child.lock().unwrap() {
            signal(child, libc::SIGSTOP);
        }
    }

    pub fn resume(&self, i: usize) {
        if let Some(child) = &*self.nodes[i].child.lock().unwrap() {
            signal(child, libc::SIGCONT);
        }
    }

    /// Which node holds the lease of `owner_id`'s database, and its fencing
    /// number, as PostgreSQL says.
    pub async fn home_of(&self, owner_id: &str) -> Option<(usize, i64)> {
        let (client, connection) = tokio_postgres::connect(&self.database, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let row = client
            .query_opt(
                "SELECT address, fencing FROM database_homes WHERE owner_id = $1",
                &[&owner_id],
            )
            .await
            .unwrap()?;
        let address: String = row.get(0);
        let i = self.nodes.iter().position(|n| n.cluster == address)?;
        Some((i, row.get(1)))
    }

    /// SIGKILL node `i`: no goodbye, no flushing, as a machine lost.
    pub fn kill(&self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.lock().unwrap().take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    pub fn postgres(&self) -> &postgres::Cluster {
        &self.pg
    }

    /// What node `i` wrote to stderr, for a failing assertion's message.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("node{i}.log"))).unwrap_or_default()
    }
}

impl Node {
    fn spawn(&self, dir: &Path, i: usize) {
        let mut command = self.command.lock().unwrap();
        // Appended to: a restarted node's log follows its first run's.
        let log = File::options()
            .create(true)
            .append(true)
            .open(dir.join(format!("node{i}.log")))
            .unwrap();
        let child = command.stderr(log).spawn().expect("starting valbox-node");
        *self.child.lock().unwrap() = Some(child);
    }
}

fn signal(child: &Child, signal: i32) {
    // SAFETY: kill(2) on a child this test started and has not reaped.
    unsafe { libc::kill(child.id() as i32, signal) };
}

impl Drop for Balanced {
    fn drop(&mut self) {
        if std::env::var_os("VALBOX_KEEP_TEST_DIR").is_some() {
            std::mem::forget(std::mem::replace(
                &mut self.dir,
                tempfile::tempdir().unwrap(),
            ));
        }
        let _ = self.haproxy.kill();
        let _ = self.haproxy.wait();
        for i in 0..self.nodes.len() {
            self.resume(i);
            self.kill(i);
        }
    }
}

/// Poll `/readyz` until it answers 200, or panic with the logs.
async fn wait_until_ready(api: &Api, dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(resp) = api.http.get(format!("{}/readyz", api.base)).send().await
            && resp.status() == 200
        {
            return;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
                .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                .collect();
            panic!("{} never became ready:\n{}", api.base, logs.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
