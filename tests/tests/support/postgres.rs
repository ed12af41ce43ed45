//! A throwaway PostgreSQL cluster for tests: Debian's server binaries,
//! `initdb` into a temporary directory, one server on a free loopback
//! port, run as the `postgres` user when the tests run as root (the
//! server refuses root). Stopped and deleted when dropped.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Cluster {
    pub port: u16,
    server: std::sync::Mutex<Option<Child>>,
    bin: PathBuf,
    user: Option<(u32, u32)>,
    dir: tempfile::TempDir,
}

/// The directory of the newest installed PostgreSQL's binaries.
fn bin_dir() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed: apt-get install postgresql (.ci/run does)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("postgres").exists())
        .collect();
    dirs.sort();
    dirs.pop()
        .expect("no PostgreSQL server under /usr/lib/postgresql")
}

/// The `postgres` user's uid and gid, when running as root.
fn run_as() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let line = passwd
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .expect("tests run as root need the `postgres` user (the postgresql package makes it)");
    let fields: Vec<&str> = line.split(':').collect();
    Some((fields[2].parse().unwrap(), fields[3].parse().unwrap()))
}

fn command(bin: &Path, user: Option<(u32, u32)>) -> Command {
    let mut cmd = Command::new(bin);
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

/// A port free now for a server that a test starts later, below the
/// kernel's ephemeral range (32768 and up): a port from `bind(0)` comes
/// from that range, which outgoing connections also draw from, so one of
/// the tests' many client sockets could take it before the server binds.
pub fn free_port() -> u16 {
    loop {
        // A random start (std's hasher keys are random per instance).
        use std::hash::{BuildHasher, Hasher};
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let port = 20_000 + (random % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl Cluster {
    pub fn start() -> Self {
        let bin = bin_dir();
        let user = run_as();
        let dir = tempfile::tempdir().unwrap();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let data = dir.path().join("data");
        let status = command(&bin.join("initdb"), user)
            .args([
                "--auth=trust",
                "--username=valbox",
                "--no-sync",
                "--encoding=UTF8",
            ])
            .arg("-D")
            .arg(&data)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "initdb failed");
        let cluster = Self {
            port: free_port(),
            server: Default::default(),
            bin,
            user,
            dir,
        };
        cluster.resume();
        cluster
    }

    /// Start the server (again, after [`Cluster::stop`]) on the same
    /// port and data, and wait until it answers.
    pub fn resume(&self) {
        let server = command(&self.bin.join("postgres"), self.user)
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args([
                "-p",
                &self.port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
            ])
            .args(["-c", "fsync=off", "-c", "max_connections=200"])
            .arg("-k")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        *self.server.lock().unwrap() = Some(server);
        self.wait_ready(&self.bin);
    }

    /// Stop the server at once (its fast shutdown: connections dropped).
    pub fn stop(&self) {
        if let Some(mut server) = self.server.lock().unwrap().take() {
            let pid = server.id().to_string();
            let _ = Command::new("kill").args(["-INT", &pid]).status();
            let _ = server.wait();
        }
    }

    fn wait_ready(&self, bin: &Path) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ready = Command::new(bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("PostgreSQL did not start on port {}", self.port);
    }

    /// A new, empty database on the cluster; its URL.
    pub async fn database(&self, name: &str) -> String {
        let admin = format!("postgres://valbox@127.0.0.1:{}/postgres", self.port);
        let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap();
        format!("postgres://valbox@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}
