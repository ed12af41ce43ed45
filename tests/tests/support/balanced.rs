//! Valbox nodes as processes of their own (the `valbox-node` binary) on
//! one PostgreSQL database and one S3 bucket, behind HAProxy checking
//! `/readyz`: the README's "Running on many machines", on loopback. A node
//! can be killed with SIGKILL; PostgreSQL can be stopped and started.

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

pub struct Balanced {
    /// Through the load balancer.
    pub lb: Api,
    pub nodes: Vec<Node>,
    pg: Arc<postgres::Cluster>,
    haproxy: Child,
    dir: TempDir,
}

pub struct Node {
    /// Straight to this node.
    pub api: Api,
    /// Its internal listener, for the other nodes.
    pub cluster: String,
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
        let dir = tempfile::tempdir().unwrap();
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
                // Light on a test machine; room for every test's load.
                .args(["--concurrent-instances", "64"])
                .args(["--concurrent-calls-per-owner", "64"])
                // moto answers in Python, slower than a real S3: 48 visits
                // racing on one blob take it seconds.
                .args(["--timeout-ms", "30000"])
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(log_file(dir.path(), i));
            let child = dies_with_us(&mut command)
                .spawn()
                .expect("starting valbox-node");
            nodes.push(Node {
                api: Api::new(format!("http://127.0.0.1:{port}"), alice.clone()),
                cluster,
                child: Mutex::new(Some(child)),
            });
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
            haproxy,
            dir,
        }
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

impl Drop for Balanced {
    fn drop(&mut self) {
        let _ = self.haproxy.kill();
        let _ = self.haproxy.wait();
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

fn log_file(dir: &Path, i: usize) -> File {
    File::create(dir.join(format!("node{i}.log"))).unwrap()
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
