//! An S3 server on loopback for tests: moto's (PyPI `moto[server]`, which
//! honours `If-Match` and `If-None-Match: *` on PutObject, atomically once
//! `tests/moto_server.py` hands it one request at a time), one per test
//! binary and a bucket per test server, or one of a test's own to stop and
//! start. Its objects live in its memory.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::postgres::free_port;
use super::process::{dies_with_us, repo_root};

pub struct S3Server {
    pub port: u16,
    server: Mutex<Option<Child>>,
}

/// The credentials the nodes sign with; moto takes any.
fn set_credentials() {
    static SET: OnceLock<()> = OnceLock::new();
    SET.get_or_init(|| {
        // SAFETY: set once, before the first node reads them; Rust's own
        // environment access is serialised, and nothing in these tests
        // reads the environment from C meanwhile.
        unsafe {
            std::env::set_var("AWS_ACCESS_KEY_ID", "valbox-test");
            std::env::set_var("AWS_SECRET_ACCESS_KEY", "valbox-test-secret");
        }
    });
}

impl S3Server {
    /// A server of the test's own, stopped when dropped.
    pub fn start() -> Self {
        set_credentials();
        let server = Self {
            port: free_port(),
            server: Mutex::new(None),
        };
        server.resume();
        server
    }

    /// The server every test of this binary shares. It is started from a
    /// thread that lives as long as the process, so that it dies with it.
    pub fn shared() -> &'static Self {
        static SHARED: OnceLock<S3Server> = OnceLock::new();
        SHARED.get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                tx.send(Self::start()).unwrap();
                loop {
                    std::thread::park();
                }
            });
            rx.recv().unwrap()
        })
    }

    /// Start it (again, after [`S3Server::stop`], empty) and wait until
    /// it answers.
    pub fn resume(&self) {
        let mut command = Command::new("python3");
        command
            .arg(repo_root().join("tests/moto_server.py"))
            .arg("127.0.0.1")
            .arg(self.port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = dies_with_us(&mut command)
            .spawn()
            .expect("starting moto's S3 server: pip install 'moto[server]' (scripts/test does)");
        *self.server.lock().unwrap() = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto did not start on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kill it at once.
    pub fn stop(&self) {
        if let Some(mut server) = self.server.lock().unwrap().take() {
            let _ = server.kill();
            let _ = server.wait();
        }
    }

    /// A new, empty bucket; the `--objects` URL that names it.
    pub async fn bucket(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "valbox-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let endpoint = format!("http://127.0.0.1:{}", self.port);
        // moto makes a bucket on an unsigned PUT.
        let made = reqwest::Client::new()
            .put(format!("{endpoint}/{name}"))
            .send()
            .await
            .unwrap();
        assert!(made.status().is_success(), "making bucket {name}: {made:?}");
        format!("s3://{name}?endpoint={endpoint}&region=us-east-1")
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
