//! Email: a val mails its owner through the durable outbox, and the
//! delivery worker speaks real SMTP to a real server on loopback
//! (aiosmtpd, from PyPI, writing a Maildir), which the test then reads.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{TestServer, assert_error};
use valbox::caps::email::delivery::SmtpConfig;

/// A real SMTP server; killed on drop.
struct SmtpServer {
    child: Child,
    port: u16,
    maildir: tempfile::TempDir,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn smtp_server() -> SmtpServer {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = spawn_smtp(port);
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("aiosmtpd did not start");
}

/// Start aiosmtpd on `port`, delivering into a fresh Maildir.
fn spawn_smtp(port: u16) -> SmtpServer {
    let maildir = tempfile::tempdir().unwrap();
    let child = Command::new("python3")
        .args([
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
            "-c",
            "aiosmtpd.handlers.Mailbox",
        ])
        .arg(maildir.path().join("mail"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 -m aiosmtpd (pip install aiosmtpd; scripts/test does)");
    SmtpServer {
        child,
        port,
        maildir,
    }
}

impl SmtpServer {
    /// The messages delivered so far, raw.
    fn messages(&self) -> Vec<String> {
        let new = self.maildir.path().join("mail").join("new");
        std::fs::read_dir(new)
            .map(|d| {
                d.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn wait_for(&self, n: usize) -> Vec<String> {
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

#[tokio::test]
async fn a_val_mails_its_owner_over_real_smtp() {
    let smtp = smtp_server().await;
    let url = format!("smtp://127.0.0.1:{}", smtp.port);
    let s = TestServer::start_configured(|c| {
        c.smtp = Some(SmtpConfig::from_url(&url, "valbox@test.invalid").unwrap())
    })
    .await;
    s.deploy("notify", "notify", "public").await;
    let resp = s
        .req(
            Method::POST,
            "/x/alice/notify/?subject=Disk%20almost%20full",
            None,
        )
        .body("87% used")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().starts_with("queued "));
    let messages = smtp.wait_for(1).await;
    let m = &messages[0];
    assert!(m.contains("To: alice@example.com"), "{m}");
    assert!(m.contains("From: valbox@test.invalid"), "{m}");
    assert!(m.contains("Subject: Disk almost full"), "{m}");
    assert!(m.contains("87% used"), "{m}");

    // Through the REST API too (Val Town's shape), with an HTML part.
    let resp = s
        .req(Method::POST, "/v1/email", Some(&s.alice))
        .json(&json!({ "subject": "From REST", "text": "plain", "html": "<b>rich</b>", "from": { "email": "x@y.z", "name": "My Val" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.json::<Value>().await.unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("queued")
    );
    let messages = smtp.wait_for(2).await;
    let m = messages
        .iter()
        .find(|m| m.contains("Subject: From REST"))
        .unwrap();
    assert!(
        m.contains("multipart/alternative") && m.contains("<b>rich</b>") && m.contains("My Val"),
        "{m}"
    );

    // The outbox records the outcome.
    let outbox: Value = s
        .get("/v1/email", Some(&s.alice))
        .await
        .json()
        .await
        .unwrap();
    let statuses: Vec<&str> = outbox["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["sent", "sent"]);
}

#[tokio::test]
async fn mail_goes_to_the_owner_only_within_the_daily_limit() {
    let s = TestServer::start_with(|l| l.emails_per_day = 2).await;
    s.deploy("notify", "notify", "public").await;
    let resp = s
        .req(Method::POST, "/x/alice/notify/?to=mallory@evil.test", None)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("owner only"));
    let resp = s
        .req(Method::POST, "/x/alice/notify/?to=ALICE@example.com", None)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "the owner's own address is fine");
    let resp = s
        .req(Method::POST, "/v1/email", Some(&s.alice))
        .json(&json!({ "to": ["bob@example.com"], "text": "x" }))
        .send()
        .await
        .unwrap();
    assert!(
        assert_error(resp, StatusCode::BAD_REQUEST, "invalid_email")
            .await
            .contains("owner only")
    );
    let resp = s
        .req(Method::POST, "/v1/email", Some(&s.alice))
        .json(&json!({ "subject": "no body" }))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "invalid_email").await;
    let resp = s
        .req(Method::POST, "/v1/email", Some(&s.alice))
        .json(&json!({ "text": "second" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = s
        .req(Method::POST, "/v1/email", Some(&s.alice))
        .json(&json!({ "text": "third" }))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::TOO_MANY_REQUESTS, "daily_limit").await;

    // Without SMTP configured, mail stays queued where the owner can read it;
    // another user sees none of it.
    let outbox: Value = s
        .get("/v1/email", Some(&s.alice))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(outbox["data"].as_array().unwrap().len(), 2);
    assert_eq!(outbox["data"][0]["status"], "queued");
    let bob = s.create_user("bob");
    let theirs: Value = s.get("/v1/email", Some(&bob)).await.json().await.unwrap();
    assert_eq!(theirs["data"], json!([]));

    // Scopes, through REST and through the import.
    let (_, reader) = s.token_with(&s.alice, &["email:read"]).await;
    let resp = s
        .req(Method::POST, "/v1/email", Some(&reader))
        .json(&json!({ "text": "x" }))
        .send()
        .await
        .unwrap();
    assert!(
        assert_error(resp, StatusCode::FORBIDDEN, "forbidden")
            .await
            .contains("email:write")
    );
    let val: Value = s
        .get("/v2/alias/vals/alice/notify", None)
        .await
        .json()
        .await
        .unwrap();
    let id = val["id"].as_str().unwrap();
    let resp = s.patch_val(id, &json!({ "scopes": [] })).await;
    assert_eq!(resp.status(), 200);
    let resp = s
        .req(Method::POST, "/x/alice/notify/", None)
        .body("x")
        .send()
        .await
        .unwrap();
    assert!(resp.text().await.unwrap().contains("email:write"));
}

#[tokio::test]
async fn delivery_retries_until_the_smtp_server_answers() {
    // Nothing listens on this port at first.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("smtp://127.0.0.1:{port}");
    let s = TestServer::start_configured(|c| {
        c.smtp = Some(SmtpConfig::from_url(&url, "valbox@test.invalid").unwrap())
    })
    .await;
    let resp = s
        .req(Method::POST, "/v1/email", Some(&s.alice))
        .json(&json!({ "subject": "Retry me", "text": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut failed_once = false;
    for _ in 0..100 {
        let outbox: Value = s
            .get("/v1/email", Some(&s.alice))
            .await
            .json()
            .await
            .unwrap();
        if outbox["data"][0]["attempts"].as_i64().unwrap_or(0) >= 1 {
            assert_eq!(outbox["data"][0]["status"], "queued");
            assert!(outbox["data"][0]["lastError"].as_str().is_some());
            failed_once = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(failed_once, "the first attempt was never recorded");
    // Bring the server up on that port; the retry (after 2 s) delivers.
    let smtp = spawn_smtp(port);
    let messages = smtp.wait_for(1).await;
    assert!(messages[0].contains("Subject: Retry me"));
}
