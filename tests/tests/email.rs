//! Email: a val mails its owner through the durable outbox, and the
//! delivery worker speaks real SMTP to a real server on loopback
//! (aiosmtpd, from PyPI, writing a Maildir), which the test then reads.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::smtp::{free_port, smtp_server, spawn_python, spawn_smtp};
use support::{TestServer, assert_error};
use valbox_caps::email::delivery::SmtpConfig;

/// An SMTP server (aiosmtpd) that refuses every recipient: alice with a
/// permanent 550, anyone else with a transient 451.
const REJECTING_SMTP: &str = r#"
import sys, time
from aiosmtpd.controller import Controller

class Reject:
    async def handle_RCPT(self, server, session, envelope, address, options):
        if address.startswith("alice@"):
            return "550 5.1.1 no such mailbox"
        return "451 4.3.0 try again later"

Controller(Reject(), hostname="127.0.0.1", port=int(sys.argv[1])).start()
while True:
    time.sleep(60)
"#;

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
    let bob = s.create_user("bob").await;
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
    let port = free_port();
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

/// The newest outbox entry of `token`'s user once `done` holds for it.
async fn wait_for_outbox(s: &TestServer, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..100 {
        let outbox: Value = s.get("/v1/email", Some(token)).await.json().await.unwrap();
        if done(&outbox["data"][0]) {
            return outbox["data"][0].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the outbox never reached the expected state");
}

#[tokio::test]
async fn a_permanent_rejection_fails_at_once_and_a_transient_one_is_retried() {
    let port = free_port();
    let smtp = spawn_python(port, &["-c", REJECTING_SMTP, &port.to_string()], false);
    smtp.listening().await;
    let url = format!("smtp://127.0.0.1:{port}");
    let s = TestServer::start_configured(|c| {
        c.smtp = Some(SmtpConfig::from_url(&url, "valbox@test.invalid").unwrap())
    })
    .await;
    let bob = s.create_user("bob").await;
    for token in [&s.alice, &bob] {
        let resp = s
            .req(Method::POST, "/v1/email", Some(token))
            .json(&json!({ "subject": "Bounce", "text": "x" }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }

    // 550 for alice: failed after one attempt, saying why.
    let entry = wait_for_outbox(&s, &s.alice, |e| e["status"] == "failed").await;
    assert_eq!(entry["attempts"], 1);
    let error = entry["lastError"].as_str().unwrap();
    assert!(
        error.contains("550") && error.contains("not retried"),
        "{error}"
    );

    // 451 for bob: still queued for another attempt.
    let entry = wait_for_outbox(&s, &bob, |e| e["attempts"].as_i64() >= Some(1)).await;
    assert_eq!(entry["status"], "queued");
    assert!(
        entry["lastError"].as_str().unwrap().contains("451"),
        "{entry}"
    );

    // Past bob's first retry (after 2 s), alice's message was not tried again.
    let entry = wait_for_outbox(&s, &bob, |e| e["attempts"].as_i64() >= Some(2)).await;
    assert_eq!(entry["status"], "queued");
    let entry = wait_for_outbox(&s, &s.alice, |_| true).await;
    assert_eq!(
        (&entry["status"], &entry["attempts"]),
        (&json!("failed"), &json!(1))
    );
}

#[tokio::test]
async fn bad_input_is_refused_before_it_is_queued() {
    // Room for request bodies past the 1 MiB email limit.
    let s = TestServer::start_with(|l| l.request_body_bytes = 4 << 20).await;
    // An account whose address cannot be delivered to (made while the server
    // is idle: `create_user` writes to its database directly).
    let carol = valbox::cli::create_user(s.dir.path(), "carol", "carol@")
        .await
        .unwrap();
    let send = |token: &str, body: Value| {
        s.req(Method::POST, "/v1/email", Some(token))
            .json(&body)
            .send()
    };

    let resp = send(
        &s.alice,
        json!({ "text": "x", "replyToList": ["me@example.com", "not an address"] }),
    )
    .await
    .unwrap();
    let message = assert_error(resp, StatusCode::BAD_REQUEST, "invalid_email").await;
    assert!(
        message.contains("reply-to address `not an address`"),
        "{message}"
    );

    // 1 MiB of subject, text and html together at most.
    let resp = send(
        &s.alice,
        json!({ "subject": "big", "text": "x".repeat(1024 * 1024) }),
    )
    .await
    .unwrap();
    let message = assert_error(resp, StatusCode::PAYLOAD_TOO_LARGE, "too_large").await;
    assert!(message.contains("1 MiB"), "{message}");
    s.deploy("notify", "notify", "public").await;
    let resp = s
        .req(Method::POST, "/x/alice/notify/", None)
        .body("x".repeat(1024 * 1024 + 1))
        .send()
        .await
        .unwrap();
    let text = resp.text().await.unwrap();
    assert!(text.contains("limit") && text.contains("1 MiB"), "{text}");

    // carol's address is unusable: refused over REST and from a val.
    let resp = send(&carol, json!({ "text": "x" })).await.unwrap();
    let message = assert_error(resp, StatusCode::BAD_REQUEST, "invalid_email").await;
    assert!(message.contains("no usable email address"), "{message}");
    let resp = s
        .deploy_bytes(&carol, "notify", "public", support::val_bytes("notify"))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = s
        .req(Method::POST, "/x/carol/notify/", None)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("invalid") && text.contains("no usable email address"),
        "{text}"
    );

    // Nothing was queued.
    for token in [&s.alice, &carol] {
        let outbox: Value = s.get("/v1/email", Some(token)).await.json().await.unwrap();
        assert_eq!(outbox["data"], json!([]));
    }
}

/// aiosmtpd requiring STARTTLS with the given certificate and key, then
/// delivering into its Maildir.
const STARTTLS_SMTP: &str = r#"
import ssl, sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox

port, cert, key, maildir = sys.argv[1:]
tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
tls.load_cert_chain(cert, key)
Controller(Mailbox(maildir), hostname="127.0.0.1", port=int(port),
           tls_context=tls, require_starttls=True).start()
while True:
    time.sleep(60)
"#;

#[tokio::test]
async fn delivery_over_starttls_verifies_the_server_certificate() {
    // A self-signed certificate for 127.0.0.1, trusted only when given.
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl (apt-get install openssl)");
    assert!(status.success(), "openssl could not make a certificate");
    let port = free_port();
    let (cert_arg, key_arg) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let smtp = spawn_python(
        port,
        &["-c", STARTTLS_SMTP, &port.to_string(), cert_arg, key_arg],
        true,
    );
    smtp.listening().await;
    let config = SmtpConfig::from_url(
        &format!("smtp+starttls://127.0.0.1:{port}"),
        "valbox@test.invalid",
    )
    .unwrap();

    // Without the certificate trusted, the handshake fails (and is retried).
    let untrusting = config.clone();
    let s = TestServer::start_configured(|c| c.smtp = Some(untrusting)).await;
    let send = |s: &TestServer| {
        s.req(Method::POST, "/v1/email", Some(&s.alice))
            .json(&json!({ "subject": "Over TLS", "text": "secret" }))
            .send()
    };
    assert_eq!(send(&s).await.unwrap().status(), 200);
    let entry = wait_for_outbox(&s, &s.alice, |e| e["attempts"].as_i64() >= Some(1)).await;
    assert_eq!(entry["status"], "queued");
    let error = entry["lastError"].as_str().unwrap();
    assert!(error.contains("invalid peer certificate"), "{error}");
    drop(s);

    // Trusted, it is delivered over STARTTLS (the server refuses mail without).
    let pem = std::fs::read(&cert).unwrap();
    let trusting = config.with_extra_roots(&pem).unwrap();
    let s = TestServer::start_configured(|c| c.smtp = Some(trusting)).await;
    assert_eq!(send(&s).await.unwrap().status(), 200);
    let messages = smtp.wait_for(1).await;
    assert!(messages[0].contains("Subject: Over TLS"), "{}", messages[0]);
    let entry = wait_for_outbox(&s, &s.alice, |e| e["status"] == "sent").await;
    assert_eq!(entry["attempts"], 1);
}
