//! A real SMTP server for the tests: aiosmtpd (from PyPI, installed by
//! scripts/test) on a loopback port, writing a Maildir the test reads.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A real SMTP server; killed on drop.
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    maildir: tempfile::TempDir,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn smtp_server() -> SmtpServer {
    let port = free_port();
    let server = spawn_smtp(port);
    server.listening().await;
    server
}

pub use super::postgres::free_port;

/// Start aiosmtpd on `port`, delivering into a fresh Maildir.
pub fn spawn_smtp(port: u16) -> SmtpServer {
    spawn_python(
        port,
        &[
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
            "-c",
            "aiosmtpd.handlers.Mailbox",
        ],
        true,
    )
}

/// Run `python3 ARGS` as the SMTP server on `port`; with `maildir`, the
/// last argument is the Maildir it writes.
pub fn spawn_python(port: u16, args: &[&str], maildir: bool) -> SmtpServer {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new("python3");
    command.args(args);
    if maildir {
        command.arg(dir.path().join("mail"));
    }
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 -m aiosmtpd (pip install aiosmtpd; scripts/test does)");
    SmtpServer {
        child,
        port,
        maildir: dir,
    }
}

impl SmtpServer {
    pub async fn listening(&self) {
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the SMTP server did not start");
    }

    /// The messages delivered so far, raw.
    pub fn messages(&self) -> Vec<String> {
        let new = self.maildir.path().join("mail").join("new");
        std::fs::read_dir(new)
            .map(|d| {
                d.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub async fn wait_for(&self, n: usize) -> Vec<String> {
        for _ in 0..200 {
            let m = self.messages();
            if m.len() >= n {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "expected {n} delivered messages, got {}",
            self.messages().len()
        );
    }
}
