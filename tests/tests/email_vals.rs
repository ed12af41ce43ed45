//! Email vals: mail sent with Python's smtplib (a real SMTP client) to
//! `{user}.{val}@` the test domain reaches the val, which keeps it in
//! SQLite; the SMTP server refuses what it must with the right codes,
//! offers STARTTLS, stays up through junk, retries a failing val with
//! backoff and keeps acknowledged mail across a restart.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use support::TestServer;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use valbox_server::config::Config;
use valbox_server::edge::TlsFiles;
use valbox_server::mail_in::MailConfig;

const DOMAIN: &str = "mail.test";

/// A server receiving mail on a free port, tuned by `tune`.
async fn server(tune: impl FnOnce(&mut MailConfig)) -> TestServer {
    let mut mail = MailConfig::new("127.0.0.1:0".parse().unwrap(), DOMAIN);
    mail.first_retry = Duration::from_millis(500);
    tune(&mut mail);
    TestServer::start_configured(move |c| c.mail = Some(mail)).await
}

fn mail_addr(s: &TestServer) -> SocketAddr {
    s.server.as_ref().unwrap().mail_addr.unwrap()
}

/// Send one message with smtplib (tests/mail/send.py): `{"ok": true}` or
/// the server's refusal, `{"code": N, "message": M}`.
async fn send(s: &TestServer, to: &str, kind: &str, extra: &[&str]) -> Value {
    let addr = mail_addr(s);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("mail/send.py");
    let mut command = Command::new("python3");
    command
        .arg(script)
        .args([&addr.ip().to_string(), &addr.port().to_string(), to, kind])
        .args(extra);
    // The server runs on this test's runtime: wait for the client off it.
    let out = tokio::task::spawn_blocking(move || command.output().expect("python3"))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "send.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The rows of alice's `inbox` table, once there are `n`.
async fn inbox_rows(s: &TestServer, n: usize) -> Vec<Value> {
    let query =
        "SELECT sender, subject, text, attachments, message_id, parsed FROM inbox ORDER BY id";
    for _ in 0..200 {
        let resp = s
            .req(reqwest::Method::POST, "/v1/sqlite/execute", Some(&s.alice))
            .json(&json!({ "statement": query }))
            .send()
            .await
            .unwrap();
        if resp.status() == 200 {
            let body: Value = resp.json().await.unwrap();
            let rows = body["rows"].as_array().unwrap().clone();
            if rows.len() >= n {
                return rows;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the inbox never had {n} rows");
}

/// A raw SMTP conversation, for what no polite client sends.
struct Raw {
    conn: BufReader<TcpStream>,
}

impl Raw {
    async fn connect(addr: SocketAddr) -> (Self, u16) {
        let conn = BufReader::new(TcpStream::connect(addr).await.unwrap());
        let mut raw = Raw { conn };
        let (code, _) = raw.reply().await;
        (raw, code)
    }

    /// One reply, all its lines: its code and its text.
    async fn reply(&mut self) -> (u16, String) {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            let read =
                tokio::time::timeout(Duration::from_secs(10), self.conn.read_line(&mut line))
                    .await
                    .expect("a reply within 10 s")
                    .unwrap();
            if read == 0 {
                return (0, text);
            }
            text.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return (line[..3].parse().unwrap(), text);
            }
        }
    }

    async fn say(&mut self, line: &str) -> (u16, String) {
        self.write(&format!("{line}\r\n")).await;
        self.reply().await
    }

    async fn write(&mut self, bytes: &str) {
        self.conn
            .get_mut()
            .write_all(bytes.as_bytes())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn mail_of_every_kind_reaches_an_email_val_that_keeps_it() {
    let s = server(|_| {}).await;
    let deployed = s.deploy("inbox", "inbox", "public").await;
    let id = deployed["valId"].as_str().unwrap().to_owned();
    let to = format!("alice.inbox@{DOMAIN}");
    // The val says where it receives mail.
    let view: Value = s
        .get(&format!("/v2/vals/{id}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["emailAddress"], to.as_str(), "{view}");
    for kind in ["plain", "multipart", "attachment", "unparseable"] {
        assert_eq!(
            send(&s, &to, kind, &[]).await,
            json!({ "ok": true, "tls": false }),
            "{kind}"
        );
    }
    // Any case of the user and domain, and a +tag, reach the same val.
    let tagged = format!("Alice.inbox+news@{}", DOMAIN.to_uppercase());
    assert_eq!(send(&s, &tagged, "plain", &[]).await["ok"], true);

    let rows = inbox_rows(&s, 5).await;
    let [plain, multipart, attachment, unparseable, tagged] = &rows[..5] else {
        unreachable!()
    };
    assert_eq!(plain[0], "ann@example.com");
    assert_eq!(plain[1], "plain hello");
    // Dot-stuffing undone: the line that began with a dot keeps one.
    assert_eq!(
        plain[2].as_str().unwrap().replace("\r\n", "\n"),
        "Hi there,\n.a line that starts with a dot\nbye\n"
    );
    assert_eq!(plain[3], "[]");
    assert_eq!(plain[4], "plain.1@example.com");
    assert_eq!(plain[5], 1);
    assert_eq!(multipart[2].as_str().unwrap().trim(), "the text part");
    let attachments: Value = serde_json::from_str(attachment[3].as_str().unwrap()).unwrap();
    assert_eq!(
        attachments,
        json!([{ "name": "report.pdf", "size": 9 + 2560 }])
    );
    // What is no MIME message arrives anyway, raw, flagged.
    assert_eq!(unparseable[5], 0);
    assert!(
        unparseable[2]
            .as_str()
            .unwrap()
            .contains("not a message at all")
    );
    assert_eq!(tagged[1], "plain hello");

    // The same val in JavaScript and in Python keeps the same row.
    for (name, example) in [("js-inbox", "js-inbox"), ("py-inbox", "py-inbox")] {
        s.deploy(name, example, "public").await;
        let to = format!("alice.{name}@{DOMAIN}");
        assert_eq!(send(&s, &to, "attachment", &[]).await["ok"], true, "{name}");
    }
    let rows = inbox_rows(&s, 7).await;
    assert_eq!(rows[5], rows[6]);
    assert_eq!(rows[5], rows[2], "JS and Python keep what Rust keeps");

    // Each delivery is a call in the val's log, with trigger `email`.
    let logs = s
        .wait_for_logs(&s.alice, &format!("val_id={id}"), |d| d.len() >= 5)
        .await;
    for log in &logs {
        assert_eq!(log["attributes"]["trigger"], "email", "{log}");
    }
}

#[tokio::test]
async fn the_smtp_server_refuses_what_it_must_and_offers_starttls() {
    let dir = tempfile::tempdir().unwrap();
    let made =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let s = server(|m| {
        m.max_message_bytes = 64 * 1024;
        m.max_connections_per_client = 6;
        m.tls = Some(TlsFiles {
            cert: cert.clone(),
            key,
        });
    })
    .await;
    let inbox = s.deploy("inbox", "inbox", "public").await;
    s.deploy("secret-inbox", "inbox", "private").await;
    s.deploy("hello", "hello", "public").await;
    let to = format!("alice.inbox@{DOMAIN}");

    // Unknown, private and non-email vals, and other domains: 550 at RCPT.
    for nobody in [
        format!("alice.nothing@{DOMAIN}"),
        format!("alice.secret-inbox@{DOMAIN}"),
        format!("alice.hello@{DOMAIN}"),
        format!("nobody.inbox@{DOMAIN}"),
        "alice.inbox@elsewhere.test".to_string(),
        format!("alice@{DOMAIN}"),
    ] {
        let refused = send(&s, &nobody, "plain", &[]).await;
        assert_eq!(refused["code"], 550, "{nobody}: {refused}");
    }
    // Too big, declared (SIZE): 552 at MAIL.
    assert_eq!(send(&s, &to, "big:70000", &[]).await["code"], 552);
    // STARTTLS, then the message.
    let cert = cert.to_str().unwrap();
    assert_eq!(
        send(&s, &to, "plain", &["--starttls", cert]).await,
        json!({ "ok": true, "tls": true })
    );
    inbox_rows(&s, 1).await;
    // A message naming the recipient val in its loop header: 554.
    let inbox_id = inbox["valId"].as_str().unwrap();
    assert_eq!(
        send(&s, &to, &format!("loop:{inbox_id}"), &[]).await["code"],
        554
    );

    let addr = mail_addr(&s);
    let (mut raw, greeting) = Raw::connect(addr).await;
    assert_eq!(greeting, 220);
    // Out of order: each refused with 503, and the session goes on.
    assert_eq!(raw.say("MAIL FROM:<a@example.com>").await.0, 503);
    assert_eq!(raw.say("EHLO raw.example.com").await.0, 250);
    assert_eq!(raw.say("RCPT TO:<alice.inbox@mail.test>").await.0, 503);
    assert_eq!(raw.say("DATA").await.0, 503);
    assert_eq!(raw.say("MAIL FROM:<a@example.com>").await.0, 250);
    assert_eq!(raw.say("MAIL FROM:<a@example.com>").await.0, 503);
    assert_eq!(raw.say("DATA").await.0, 554);
    assert_eq!(raw.say("RSET").await.0, 250);
    assert_eq!(raw.say("MAIL FROM:a@example.com").await.0, 501);
    assert_eq!(raw.say("FROB").await.0, 500);
    assert_eq!(raw.say(&"X".repeat(5000)).await.0, 500);
    // Too big, undeclared: read to its end, then 552.
    assert_eq!(raw.say("MAIL FROM:<a@example.com>").await.0, 250);
    assert_eq!(raw.say("RCPT TO:<alice.inbox@mail.test>").await.0, 250);
    assert_eq!(raw.say("DATA").await.0, 354);
    let line = format!("{}\r\n", "y".repeat(998));
    for _ in 0..70 {
        raw.write(&line).await;
    }
    assert_eq!(raw.say(".").await.0, 552);
    // A bare LF before the dot is data, not the end (no smuggling of a
    // second message), and one val named twice gets one copy.
    assert_eq!(raw.say("MAIL FROM:<a@example.com>").await.0, 250);
    assert_eq!(raw.say("RCPT TO:<alice.inbox@mail.test>").await.0, 250);
    assert_eq!(
        raw.say("RCPT TO:<ALICE.inbox+again@mail.test>").await.0,
        250
    );
    assert_eq!(raw.say("DATA").await.0, 354);
    raw.write("Subject: smuggled\r\n\r\nfirst\n.\r\nMAIL FROM:<ceo@bank.test>\r\n")
        .await;
    let (code, text) = raw.say(".").await;
    assert_eq!(code, 250, "{text}");
    let rows = inbox_rows(&s, 2).await;
    assert_eq!(rows.len(), 2, "one copy");
    assert!(
        rows[1][2]
            .as_str()
            .unwrap()
            .contains("MAIL FROM:<ceo@bank.test>")
    );
    // Whatever was said after STARTTLS before the handshake: refused.
    raw.write("STARTTLS\r\nMAIL FROM:<evil@example.com>\r\n")
        .await;
    assert_eq!(raw.reply().await.0, 503);
    // Ten mistakes, and it hangs up.
    let (mut raw, _) = Raw::connect(addr).await;
    let mut last = 0;
    for _ in 0..10 {
        last = raw.say("NONSENSE").await.0;
    }
    assert_eq!(last, 500);
    assert_eq!(raw.reply().await.0, 421);

    // More connections from one address than allowed: 421.
    let mut open = Vec::new();
    for _ in 0..6 {
        let (raw, code) = Raw::connect(addr).await;
        assert_eq!(code, 220);
        open.push(raw);
    }
    assert_eq!(Raw::connect(addr).await.1, 421);
    drop(open);
}

#[tokio::test]
async fn the_server_stays_up_through_a_thousand_junk_sessions() {
    let s = server(|_| {}).await;
    s.deploy("inbox", "inbox", "public").await;
    let addr = mail_addr(&s);
    let junk: [&[u8]; 8] = [
        b"\x00\xff\xfe\r\n",
        b"EHLO x\r\nDATA\r\nDATA\r\n",
        b"HELO\r\nMAIL FROM:<\r\nRCPT TO:>\r\n",
        b"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice.inbox@mail.test>\r\nDATA\r\nhalf a mess",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"EHLO x\r\nSTARTTLS\r\n\x16\x03\x01\x00\x05hello",
        b"\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n",
        b"EHLO x\r\nMAIL FROM:<a@b> SIZE=99999999999999999999\r\nQUIT\r\n",
    ];
    let sessions: Vec<_> = (0..1000)
        .map(|i| {
            let bytes = junk[i % junk.len()];
            tokio::spawn(async move {
                let Ok(mut conn) = TcpStream::connect(addr).await else {
                    return;
                };
                let _ = conn.write_all(bytes).await;
                if i % 3 == 0 {
                    let _ = conn.write_all(&vec![b'z'; 100_000]).await;
                }
                // Half hang up at once; half read what they are told.
                if i % 2 == 0 {
                    let mut sink = Vec::new();
                    let _ = tokio::time::timeout(
                        Duration::from_millis(200),
                        tokio::io::AsyncReadExt::read_to_end(&mut conn, &mut sink),
                    )
                    .await;
                }
            })
        })
        .collect();
    for session in sessions {
        session.await.unwrap();
    }
    // Still up, and still delivering.
    let to = format!("alice.inbox@{DOMAIN}");
    assert_eq!(send(&s, &to, "plain", &[]).await["ok"], true);
    inbox_rows(&s, 1).await;
}

#[tokio::test]
async fn a_failing_val_is_retried_with_backoff_and_acknowledged_mail_survives_a_restart() {
    let s = server(|m| m.max_queued_bytes = 100).await;
    let deployed = s.deploy("inbox", "inbox", "public").await;
    let id = deployed["valId"].as_str().unwrap().to_owned();
    // Without its SQLite scopes the val fails each delivery.
    let resp = s.patch_val(&id, &json!({ "scopes": [] })).await;
    assert_eq!(resp.status(), 200);
    let to = format!("alice.inbox@{DOMAIN}");
    assert_eq!(send(&s, &to, "plain", &[]).await["ok"], true);
    // Attempts 0.5 s, then 1 s apart: three within 2.5 s, each logged.
    let logs = s
        .wait_for_logs(&s.alice, &format!("val_id={id}"), |d| d.len() >= 3)
        .await;
    for log in &logs {
        assert_eq!(log["attributes"]["trigger"], "email", "{log}");
        assert_eq!(log["attributes"]["http.status"], 500, "{log}");
    }
    // What waits passes the server's bound for all mail: no more is taken.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(send(&s, &to, "plain", &[]).await["code"], 452);

    // Restarted while the message waits: it is still there, and with its
    // scopes back the val gets it.
    let s = s
        .restart_configured(Duration::ZERO, |c: &mut Config| {
            let mut mail = MailConfig::new("127.0.0.1:0".parse().unwrap(), DOMAIN);
            mail.first_retry = Duration::from_millis(500);
            c.mail = Some(mail);
        })
        .await;
    let resp = s
        .patch_val(&id, &json!({ "scopes": ["sqlite:read", "sqlite:write"] }))
        .await;
    assert_eq!(resp.status(), 200);
    let rows = inbox_rows(&s, 1).await;
    assert_eq!(rows[0][1], "plain hello");

    // A val that fails for longer than mail is kept: given up, and said so.
    let s = s
        .restart_configured(Duration::ZERO, |c: &mut Config| {
            let mut mail = MailConfig::new("127.0.0.1:0".parse().unwrap(), DOMAIN);
            mail.first_retry = Duration::from_millis(300);
            mail.retry_for = Duration::from_secs(1);
            c.mail = Some(mail);
        })
        .await;
    assert_eq!(
        s.patch_val(&id, &json!({ "scopes": [] })).await.status(),
        200
    );
    assert_eq!(send(&s, &to, "multipart", &[]).await["ok"], true);
    let logs = s
        .wait_for_logs(&s.alice, &format!("val_id={id}"), |d| {
            d.iter().any(|l| l["attributes"]["http.status"] == 410)
        })
        .await;
    let gave_up = logs
        .iter()
        .find(|l| l["attributes"]["http.status"] == 410)
        .unwrap();
    assert!(gave_up.to_string().contains("given up"), "{gave_up}");
}

#[tokio::test]
async fn a_val_whose_mail_comes_back_to_it_runs_once() {
    // The outbox delivers to this server's own SMTP port, and lou's own
    // address is his forwarding val's: each forward would come back.
    let port = support::smtp::free_port();
    let s = TestServer::start_configured(|c| {
        c.mail = Some(MailConfig::new(
            format!("127.0.0.1:{port}").parse().unwrap(),
            DOMAIN,
        ));
        c.smtp = Some(
            valbox_caps::email::delivery::SmtpConfig::from_url(
                &format!("smtp://127.0.0.1:{port}"),
                "valbox@mail.test",
            )
            .unwrap(),
        );
    })
    .await;
    let lou =
        valbox::cli::create_user_in(&s.store().await, "lou", &format!("lou.forward@{DOMAIN}"))
            .await
            .unwrap();
    let resp = s
        .deploy_bytes(&lou, "forward", "public", support::val_bytes("forward"))
        .await;
    assert_eq!(resp.status(), 201);
    let id = resp.json::<Value>().await.unwrap()["valId"]
        .as_str()
        .unwrap()
        .to_owned();

    assert_eq!(
        send(&s, &format!("lou.forward@{DOMAIN}"), "plain", &[]).await["ok"],
        true
    );
    // The forward is refused as a loop when it comes back; the outbox says
    // so, and the val ran once.
    let mut outbox = Value::Null;
    for _ in 0..100 {
        outbox = s.get("/v1/email", Some(&lou)).await.json().await.unwrap();
        if outbox["data"][0]["status"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sent = &outbox["data"][0];
    assert_eq!(sent["status"], "failed", "{outbox}");
    assert!(sent.to_string().contains("loop"), "{sent}");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let logs = s
        .wait_for_logs(&lou, &format!("val_id={id}"), |d| !d.is_empty())
        .await;
    assert_eq!(logs.len(), 1, "{logs:?}");
}
